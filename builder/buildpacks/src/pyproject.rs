//! `pyproject.toml`'s `[project] dependencies` (PEP 621), the requirements the Python buildpack installs when
//! there is no `requirements.txt`. Pure. The project itself is not installed: it runs from `/app`, so a
//! code-only change keeps the dependency layer.

/// The dependency specifiers, in order; empty when the file has no `[project] dependencies` (Poetry's own
/// `[tool.poetry.dependencies]` table is not pip's syntax, and is not read).
pub fn dependencies(text: &str) -> Result<Vec<String>, String> {
    let doc = toml_edit::Document::parse(text).map_err(|e| e.to_string().trim().to_owned())?;
    let Some(deps) = doc.get("project").and_then(|p| p.get("dependencies")) else {
        return Ok(Vec::new());
    };
    let array = deps
        .as_array()
        .ok_or_else(|| "[project] dependencies must be an array of strings".to_owned())?;
    array
        .iter()
        .map(|v| {
            v.as_str()
                .map(|s| s.trim().to_owned())
                .ok_or_else(|| "[project] dependencies must be an array of strings".to_owned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_dependencies() {
        let cases: &[(&str, Result<&[&str], &str>)] = &[
            (
                "[project]\nname = \"x\"\ndependencies = [\"flask>=3\", \"gunicorn==23.0.0 ; sys_platform == 'linux'\"]\n",
                Ok(&["flask>=3", "gunicorn==23.0.0 ; sys_platform == 'linux'"]),
            ),
            ("[project]\nname = \"x\"\n", Ok(&[])),
            ("[tool.poetry.dependencies]\npython = \"^3.11\"\n", Ok(&[])),
            (
                "[project]\ndependencies = \"flask\"\n",
                Err("[project] dependencies must be an array of strings"),
            ),
            (
                "[project]\ndependencies = [1]\n",
                Err("[project] dependencies must be an array of strings"),
            ),
        ];
        for (text, expected) in cases {
            let got = dependencies(text);
            let expected = expected
                .map(|d| d.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .map_err(str::to_owned);
            assert_eq!(got, expected, "{text}");
        }
        assert!(dependencies("[project\n").is_err());
    }
}
