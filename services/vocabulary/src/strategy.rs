//! How a deploy replaces an app's instances.

/// `all-at-once` (the default): start every new instance, then stop the old ones once the new ones are up.
/// `rolling`: at most one new instance starting at a time, and one old instance stopped each time one comes up,
/// for apps that cannot run two full sets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum DeployStrategy {
    #[default]
    AllAtOnce,
    Rolling,
}

impl DeployStrategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AllAtOnce => "all-at-once",
            Self::Rolling => "rolling",
        }
    }
}

impl std::fmt::Display for DeployStrategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for DeployStrategy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "all-at-once" => Ok(Self::AllAtOnce),
            "rolling" => Ok(Self::Rolling),
            other => Err(format!(
                "unknown deploy strategy {other:?}: expected rolling or all-at-once"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::DeployStrategy;

    #[test]
    fn strategies_read_back() {
        for s in [DeployStrategy::AllAtOnce, DeployStrategy::Rolling] {
            assert_eq!(s.as_str().parse::<DeployStrategy>(), Ok(s));
        }
        assert!("blue-green"
            .parse::<DeployStrategy>()
            .unwrap_err()
            .contains("rolling"));
    }
}
