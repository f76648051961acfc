//! The protocol without the git client: a push request built by hand, gzipped the way git gzips request
//! bodies, must be decoded before `receive-pack` sees it.

use std::io::Write;

use crate::support::{have_git, Server, Work};

fn pkt(data: &[u8]) -> Vec<u8> {
    let mut out = format!("{:04x}", data.len() + 4).into_bytes();
    out.extend_from_slice(data);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gzipped_push_request_is_decoded_and_deployed() {
    if !have_git("gzipped_push_request_is_decoded_and_deployed") {
        return;
    }
    let server = Server::start(64 * 1024 * 1024).await;
    let (_, token, _) = server.tenant("alice", Some("shop")).await;
    let work = Work::new().await;
    work.write("app.py", "print('gz')\n");
    let head = work.commit("first").await;

    // The pack of everything reachable from HEAD, as `git send-pack` would send it.
    let mut pack_objects = work.command(&["pack-objects", "--stdout", "--revs", "-q"]);
    pack_objects
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = pack_objects.spawn().unwrap();
    tokio::io::AsyncWriteExt::write_all(child.stdin.as_mut().unwrap(), format!("{head}\n").as_bytes())
        .await
        .unwrap();
    drop(child.stdin.take());
    let pack = child.wait_with_output().await.unwrap();
    assert!(pack.status.success());

    let command = format!(
        "{} {head} refs/heads/main\0report-status side-band-64k agent=test\n",
        "0".repeat(40)
    );
    let mut body = pkt(command.as_bytes());
    body.extend_from_slice(b"0000");
    body.extend_from_slice(&pack.stdout);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&body).unwrap();
    let gzipped = gz.finish().unwrap();

    let response = reqwest::Client::new()
        .post(format!("{}/git/shop.git/git-receive-pack", server.url))
        .basic_auth("git", Some(&token))
        .header("content-type", "application/x-git-receive-pack-request")
        .header("content-encoding", "gzip")
        .body(gzipped)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/x-git-receive-pack-result"
    );
    let result = String::from_utf8_lossy(&response.bytes().await.unwrap()).into_owned();
    assert!(result.contains("unpack ok"), "{result:?}");
    assert!(result.contains("ok refs/heads/main"), "{result:?}");
    assert!(result.contains("-----> Building shop"), "{result:?}");
    assert_eq!(server.server_ref("shop", "main").as_deref(), Some(head.as_str()));
}
