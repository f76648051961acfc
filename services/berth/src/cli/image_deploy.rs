//! `berth deploy --image REF -a NAME` and `berth apps create NAME --image REF`: ask the API to deploy an
//! existing image, and print its progress lines as they arrive. The stream's last line is the summary, or
//! `error: REASON`, which becomes this command's error (exit 1).

use anyhow::bail;
use api_contract::{ImageDeployCreate, DEPLOY_ERROR_PREFIX};
use vocabulary::AppName;

use super::client::Client;

/// How long the CLI waits for a whole deploy (pull, import, roll-out).
const DEPLOY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// Splits a byte stream into lines (without their `\n`), whatever the chunk boundaries.
#[derive(Debug, Default)]
pub struct LineSplitter {
    partial: Vec<u8>,
}

impl LineSplitter {
    /// The lines completed by `chunk`.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<String> {
        self.partial.extend_from_slice(chunk);
        let mut lines = Vec::new();
        while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            lines.push(String::from_utf8_lossy(&line[..end]).into_owned());
        }
        lines
    }

    /// What is left after the stream's end (a last line without `\n`), if anything.
    pub fn finish(self) -> Option<String> {
        (!self.partial.is_empty()).then(|| String::from_utf8_lossy(&self.partial).into_owned())
    }
}

/// Deploys `image` to `app`, printing the progress lines; `Err` carries the server's reason.
pub async fn deploy_image(
    client: &Client,
    app: &AppName,
    image: &str,
    tls_verify: bool,
) -> anyhow::Result<()> {
    let body = ImageDeployCreate {
        image: image.to_owned(),
        tls_verify,
    };
    let mut response = client
        .post_stream(&format!("/v1/apps/{app}/deploys"), &body, DEPLOY_TIMEOUT)
        .await?;
    let mut lines = LineSplitter::default();
    let mut last: Option<String> = None;
    let show = |line: String, last: &mut Option<String>| {
        if let Some(previous) = last.replace(line) {
            println!("{previous}");
        }
    };
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                for line in lines.push(&chunk) {
                    show(line, &mut last);
                }
            }
            Ok(None) => break,
            Err(err) => bail!(
                "the connection to the API broke during the deploy ({err}); see `berth releases -a {app}` \
                 for whether it finished"
            ),
        }
    }
    if let Some(line) = lines.finish() {
        show(line, &mut last);
    }
    match last {
        Some(line) => match line.strip_prefix(DEPLOY_ERROR_PREFIX) {
            Some(reason) => bail!("{reason}"),
            None => {
                println!("{line}");
                Ok(())
            }
        },
        None => bail!("the API ended the deploy without a word; see `berth releases -a {app}`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_across_chunks() {
        let cases: &[(&[&str], &[&str], Option<&str>)] = &[
            (&["a\nb\n"], &["a", "b"], None),
            (&["a", "b\nc"], &["ab"], Some("c")),
            (&["-----> Pul", "ling x\n", "\n"], &["-----> Pulling x", ""], None),
            (&[], &[], None),
        ];
        for (chunks, expected, rest) in cases {
            let mut splitter = LineSplitter::default();
            let lines: Vec<String> = chunks.iter().flat_map(|c| splitter.push(c.as_bytes())).collect();
            assert_eq!(lines, *expected, "{chunks:?}");
            assert_eq!(splitter.finish().as_deref(), *rest, "{chunks:?}");
        }
    }
}
