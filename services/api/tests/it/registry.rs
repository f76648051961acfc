//! The OCI distribution pull API (`/v2/...`): in-process for the rules, and with the real `skopeo` over a
//! loopback socket for what registry clients actually do.

use std::collections::BTreeMap;
use std::future::IntoFuture;
use std::process::Command;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode};
use base64::Engine as _;
use image_store::{ImageConfig, LayerCompression, LayerMode, LayerOptions};
use serde_json::Value;
use tower::ServiceExt;

use crate::Harness;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

struct Raw {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Raw {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {:?}", self.body))
    }

    /// The OCI error code of an error body (which has exactly one error).
    fn code(&self) -> String {
        let body = self.json();
        assert_eq!(body["errors"].as_array().map(Vec::len), Some(1), "{body}");
        body["errors"][0]["code"].as_str().unwrap().to_owned()
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} in {:?}", self.headers))
            .to_str()
            .unwrap()
    }
}

fn basic(token: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("anyone:{token}"))
    )
}

async fn pull(h: &Harness, method: Method, uri: &str, authorization: Option<&str>) -> Raw {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(value) = authorization {
        req = req.header("authorization", value);
    }
    let response = h
        .router
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), 64 << 20)
        .await
        .unwrap();
    Raw {
        status,
        headers,
        body,
    }
}

/// Bytes that gzip cannot shrink (xorshift), so a layer spans many reads when streamed.
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

/// A small image of one layer holding `files` (and some noise, `noise_len` bytes), stored under `tag`.
/// Returns the manifest digest and the layer digest.
fn image(
    h: &Harness,
    tag: &str,
    files: &[(&str, &str)],
    noise_len: usize,
    compression: LayerCompression,
) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    for (path, content) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    std::fs::write(
        dir.path().join("noise.bin"),
        noise(noise_len, 0x9e37_79b9_7f4a_7c15),
    )
    .unwrap();
    let mut options = LayerOptions::new("app", LayerMode::Reproducible);
    options.compression = Some(compression);
    let layer = h.images.write_layer(dir.path(), &options).unwrap();
    let config = ImageConfig {
        cmd: vec!["/bin/sh".into(), "-c".into(), "./run".into()],
        working_dir: "/app".into(),
        history: vec![format!("berth {tag}")],
        ..ImageConfig::default()
    };
    let manifest = h
        .images
        .put_image(tag, std::slice::from_ref(&layer), &config)
        .unwrap();
    (manifest, layer.digest)
}

/// Creates `app` for the account of `token` and records one release per manifest digest (v1, v2, ...).
async fn app_with_releases(h: &mut Harness, app: &str, token: &str, manifests: &[&str]) {
    assert_eq!(h.create_app(app, token).await.status, StatusCode::CREATED);
    let app = h.app(app).await;
    for (i, digest) in manifests.iter().enumerate() {
        h.store
            .create_release(store::NewRelease {
                app: app.id,
                image_digest: (*digest).to_owned(),
                processes: BTreeMap::new(),
                config: BTreeMap::new(),
                description: format!("Deploy {i}"),
                created_by: app.owner,
            })
            .await
            .unwrap();
    }
}

/// alice owns `shop` (v1, v2), bob owns `blog` (v1).
struct World {
    h: Harness,
    alice: String,
    bob: String,
    shop_v1: String,
    shop_v2: String,
    shop_v2_layer: String,
    blog_v1: String,
    blog_layer: String,
}

async fn world() -> World {
    let mut h = Harness::new().await;
    let alice = h.tenant("alice").await;
    let bob = h.tenant("bob").await;
    let (shop_v1, _) = image(&h, "shop-1", &[("run", "echo one")], 1000, LayerCompression::Gzip);
    // A zstd layer: served like any blob, with the manifest naming tar+zstd.
    let (shop_v2, shop_v2_layer) = image(
        &h,
        "shop-2",
        &[("run", "echo two")],
        3 << 20,
        LayerCompression::Zstd,
    );
    let (blog_v1, blog_layer) = image(
        &h,
        "blog-1",
        &[("run", "echo blog")],
        1000,
        LayerCompression::Gzip,
    );
    app_with_releases(&mut h, "shop", &alice, &[&shop_v1, &shop_v2]).await;
    app_with_releases(&mut h, "blog", &bob, &[&blog_v1]).await;
    World {
        h,
        alice,
        bob,
        shop_v1,
        shop_v2,
        shop_v2_layer,
        blog_v1,
        blog_layer,
    }
}

#[tokio::test]
async fn v2_challenges_with_basic_and_takes_the_token_as_password_or_bearer() {
    let w = world().await;
    let h = &w.h;
    for uri in ["/v2/", "/v2", "/v2/shop/manifests/latest", "/v2/nosuch/tags/list"] {
        let none = pull(h, Method::GET, uri, None).await;
        assert_eq!(none.status, StatusCode::UNAUTHORIZED, "{uri}");
        assert_eq!(none.header("www-authenticate"), r#"Basic realm="berth""#);
        assert_eq!(none.code(), "UNAUTHORIZED");
        assert_eq!(none.header("docker-distribution-api-version"), "registry/2.0");

        for wrong in [
            basic("berth_0000"),
            "Bearer berth_0000".to_owned(),
            basic(&w.alice)[..12].to_owned(),
        ] {
            let reply = pull(h, Method::GET, uri, Some(&wrong)).await;
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{uri} {wrong}");
            assert_eq!(reply.code(), "UNAUTHORIZED");
            assert!(!String::from_utf8_lossy(&reply.body).contains("berth_0000"));
        }
    }
    for auth in [basic(&w.alice), format!("Bearer {}", w.alice)] {
        let reply = pull(h, Method::GET, "/v2/", Some(&auth)).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.json(), serde_json::json!({}));
        assert_eq!(reply.header("docker-distribution-api-version"), "registry/2.0");
        let reply = pull(h, Method::GET, "/v2/shop/manifests/v1", Some(&auth)).await;
        assert_eq!(reply.status, StatusCode::OK);
    }
}

#[tokio::test]
async fn manifests_by_version_latest_and_digest() {
    let w = world().await;
    let h = &w.h;
    let auth = basic(&w.alice);
    let cases = [
        ("v1", &w.shop_v1),
        ("v2", &w.shop_v2),
        ("latest", &w.shop_v2),
        (w.shop_v1.as_str(), &w.shop_v1),
    ];
    for (reference, digest) in cases {
        let uri = format!("/v2/shop/manifests/{reference}");
        let reply = pull(h, Method::GET, &uri, Some(&auth)).await;
        assert_eq!(reply.status, StatusCode::OK, "{reference}");
        let stored = h.images.read_blob(digest).unwrap();
        assert_eq!(reply.body.as_ref(), stored.as_slice(), "{reference}");
        assert_eq!(reply.header("content-type"), OCI_MANIFEST);
        assert_eq!(reply.header("docker-content-digest"), digest.as_str());
        assert_eq!(reply.header("content-length"), stored.len().to_string());

        let head = pull(h, Method::HEAD, &uri, Some(&auth)).await;
        assert_eq!(head.status, StatusCode::OK);
        assert!(head.body.is_empty());
        assert_eq!(head.header("docker-content-digest"), digest.as_str());
        assert_eq!(head.header("content-length"), stored.len().to_string());
    }
    // Not a release of shop: unknown versions, other spellings, and bob's manifest by digest.
    for reference in [
        "v3",
        "v0",
        "v01",
        "V1",
        "shop-1",
        w.blog_v1.as_str(),
        "sha256:abc",
    ] {
        let reply = pull(
            h,
            Method::GET,
            &format!("/v2/shop/manifests/{reference}"),
            Some(&auth),
        )
        .await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{reference}");
        assert_eq!(reply.code(), "MANIFEST_UNKNOWN", "{reference}");
    }
}

#[tokio::test]
async fn another_tenants_app_answers_like_a_missing_one() {
    let w = world().await;
    let h = &w.h;
    let alice = basic(&w.alice);
    // Ask for bob's app "blog" and for "nope" (same length) the same ways: the answers differ only by the name.
    let paths = |name: &str| {
        [
            format!("/v2/{name}/manifests/latest"),
            format!("/v2/{name}/manifests/v1"),
            format!("/v2/{name}/manifests/{}", w.blog_v1),
            format!("/v2/{name}/blobs/{}", w.blog_layer),
            format!("/v2/{name}/tags/list"),
        ]
    };
    for (theirs, missing) in paths("blog").iter().zip(paths("nope")) {
        for method in [Method::GET, Method::HEAD] {
            let a = pull(h, method.clone(), theirs, Some(&alice)).await;
            let b = pull(h, method.clone(), &missing, Some(&alice)).await;
            assert_eq!(a.status, StatusCode::NOT_FOUND, "{theirs}");
            assert_eq!((a.status, &a.headers), (b.status, &b.headers), "{theirs}");
            let body = String::from_utf8_lossy(&a.body).replace("blog", "nope");
            assert_eq!(body, String::from_utf8_lossy(&b.body), "{theirs}");
            if method == Method::GET {
                assert_eq!(a.code(), "NAME_UNKNOWN");
            }
        }
    }
    // Names that are not app names, and nested repository names, are just as unknown.
    for uri in ["/v2/Not_An_App/tags/list", "/v2/bob/blog/manifests/latest"] {
        let reply = pull(h, Method::GET, uri, Some(&alice)).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(reply.code(), "NAME_UNKNOWN", "{uri}");
    }
    // Bob, and the admin, see blog.
    for token in [&w.bob, &h.admin] {
        let reply = pull(h, Method::GET, "/v2/blog/manifests/latest", Some(&basic(token))).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.header("docker-content-digest"), w.blog_v1);
    }
}

#[tokio::test]
async fn collaborators_and_read_only_tokens_pull_and_suspended_accounts_do_not() {
    let w = world().await;
    let h = &w.h;
    let uri = "/v2/blog/manifests/latest";
    let alice = basic(&w.alice);
    assert_eq!(
        pull(h, Method::GET, uri, Some(&alice)).await.status,
        StatusCode::NOT_FOUND
    );
    let account = |name: &str| vocabulary::AccountName::new(name).unwrap();
    let alice_account = h.store.account_by_name(&account("alice")).await.unwrap().unwrap();
    let bob_account = h.store.account_by_name(&account("bob")).await.unwrap().unwrap();
    let blog = h.app("blog").await;
    h.store
        .add_collaborator(blog.id, &alice_account, &bob_account.name)
        .await
        .unwrap();
    let reply = pull(h, Method::GET, uri, Some(&alice)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("docker-content-digest"), w.blog_v1);

    let (_, read) = h
        .store
        .create_token(bob_account.id, store::TokenScope::Read)
        .await
        .unwrap();
    assert_eq!(
        pull(h, Method::GET, uri, Some(&basic(&read))).await.status,
        StatusCode::OK
    );

    h.store.set_account_suspended(bob_account.id, true).await.unwrap();
    for token in [&w.bob, &read] {
        let reply = pull(h, Method::GET, uri, Some(&basic(token))).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn blobs_are_served_only_for_the_apps_own_images() {
    let w = world().await;
    let h = &w.h;
    let auth = basic(&w.alice);
    let manifest = h.images.read_manifest(&w.shop_v2).unwrap();
    assert_eq!(manifest.references.len(), 2, "config and one layer");
    assert!(manifest.references.contains(&w.shop_v2_layer));
    for digest in manifest.references.iter().chain([&w.shop_v2]) {
        let uri = format!("/v2/shop/blobs/{digest}");
        let reply = pull(h, Method::GET, &uri, Some(&auth)).await;
        assert_eq!(reply.status, StatusCode::OK, "{digest}");
        let stored = std::fs::read(h.images.blob_path(digest).unwrap()).unwrap();
        assert_eq!(reply.body.len(), stored.len());
        assert!(reply.body.as_ref() == stored.as_slice(), "{digest}: bytes differ");
        assert_eq!(reply.header("docker-content-digest"), digest.as_str());
        assert_eq!(reply.header("content-length"), stored.len().to_string());
        assert_eq!(reply.header("content-type"), "application/octet-stream");

        let head = pull(h, Method::HEAD, &uri, Some(&auth)).await;
        assert_eq!(head.status, StatusCode::OK);
        assert!(head.body.is_empty());
        assert_eq!(head.header("content-length"), stored.len().to_string());
    }
    assert!(
        h.images
            .blob_path(&w.shop_v2_layer)
            .unwrap()
            .metadata()
            .unwrap()
            .len()
            > 3 << 20,
        "the noise layer is large enough to stream in many chunks"
    );

    // Bob's layer is in the same store, and a layer no image uses is too: neither is shop's.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("loose"), "not in any image").unwrap();
    let loose = h
        .images
        .write_layer_from_dir(dir.path(), "", LayerMode::Reproducible)
        .unwrap()
        .digest;
    let absent = format!("sha256:{}", "0".repeat(64));
    for digest in [&w.blog_layer, &w.blog_v1, &loose, &absent] {
        assert!(digest == &absent || h.images.has_blob(digest));
        let reply = pull(h, Method::GET, &format!("/v2/shop/blobs/{digest}"), Some(&auth)).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{digest}");
        assert_eq!(reply.code(), "BLOB_UNKNOWN");
    }
    for digest in ["sha256:abc", "sha256:..%2F..%2Findex.json", "md5:00", "latest"] {
        let reply = pull(h, Method::GET, &format!("/v2/shop/blobs/{digest}"), Some(&auth)).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{digest}");
        assert_eq!(reply.code(), "DIGEST_INVALID");
    }
}

#[tokio::test]
async fn tags_are_versions_and_latest_in_lexical_order() {
    let mut w = world().await;
    let h = &mut w.h;
    let auth = basic(&w.alice);
    let many: Vec<&str> = std::iter::repeat_n(w.shop_v1.as_str(), 9).collect();
    app_with_releases(h, "many", &w.alice, &many).await;
    app_with_releases(h, "empty", &w.alice, &[]).await;
    let list = |uri: &'static str| {
        let auth = auth.clone();
        let h = &*h;
        async move {
            let reply = pull(h, Method::GET, uri, Some(&auth)).await;
            assert_eq!(reply.status, StatusCode::OK, "{uri}");
            reply.json()
        }
    };
    assert_eq!(
        list("/v2/shop/tags/list").await,
        serde_json::json!({"name": "shop", "tags": ["latest", "v1", "v2"]})
    );
    assert_eq!(
        list("/v2/many/tags/list?n=3&last=v1").await["tags"],
        serde_json::json!(["v2", "v3", "v4"])
    );
    assert_eq!(
        list("/v2/many/tags/list?n=0").await["tags"],
        serde_json::json!([])
    );
    assert_eq!(
        list("/v2/empty/tags/list").await,
        serde_json::json!({"name": "empty", "tags": []})
    );
    for query in ["n=-1", "n=x", "n=1&n=2"] {
        let uri = format!("/v2/many/tags/list?{query}");
        let reply = pull(h, Method::GET, &uri, Some(&auth)).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(reply.code(), "PAGINATION_NUMBER_INVALID", "{query}");
    }
    let reply = pull(h, Method::GET, "/v2/empty/manifests/latest", Some(&auth)).await;
    assert_eq!(reply.code(), "MANIFEST_UNKNOWN");
}

#[tokio::test]
async fn pushes_are_refused() {
    let w = world().await;
    let h = &w.h;
    let auth = basic(&w.alice);
    let cases = [
        (Method::PUT, "/v2/shop/manifests/v9".to_owned()),
        (Method::DELETE, "/v2/shop/manifests/v1".to_owned()),
        (Method::POST, "/v2/shop/blobs/uploads/".to_owned()),
        (Method::DELETE, format!("/v2/shop/blobs/{}", w.shop_v2_layer)),
        (Method::PATCH, "/v2/shop/blobs/uploads/123".to_owned()),
        (Method::GET, "/v2/shop/blobs/uploads/123".to_owned()),
    ];
    for (method, uri) in cases {
        let reply = pull(h, method.clone(), &uri, None).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{method} {uri}");
        let reply = pull(h, method.clone(), &uri, Some(&auth)).await;
        assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {uri}");
        assert_eq!(reply.code(), "UNSUPPORTED");
    }
    assert!(h.images.has_blob(&w.shop_v2_layer));
}

/// Whether `tool` is installed. Missing: skip loudly, or fail under CI.
pub(crate) fn have_tool(test: &str, tool: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{test} needs {tool}, which is not installed"
        );
        eprintln!("skipping {test}: needs {tool}");
    }
    found
}

/// Serves the harness's API on a free loopback port, until the test's runtime ends.
async fn serve(h: &Harness) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(axum::serve(listener, h.router.clone()).into_future());
    addr
}

/// Runs skopeo with `args` (off the runtime's threads): its stdout, or its stderr as the error.
async fn skopeo(args: Vec<String>) -> Result<String, String> {
    let out = tokio::task::spawn_blocking(move || Command::new("skopeo").args(&args).output())
        .await
        .unwrap()
        .expect("running skopeo");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// The head of a raw HTTP/1.1 exchange over a real socket, lowercased, and the body's length.
async fn raw_exchange(addr: std::net::SocketAddr, request: String) -> (String, usize) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).await.unwrap();
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head")
        + 4;
    (
        String::from_utf8_lossy(&bytes[..end]).to_lowercase(),
        bytes.len() - end,
    )
}

#[tokio::test]
async fn skopeo_inspects_and_copies_an_apps_image() {
    if !have_tool("skopeo_inspects_and_copies_an_apps_image", "skopeo") {
        return;
    }
    let w = world().await;
    let addr = serve(&w.h).await;
    let creds = format!("anyone:{}", w.alice);
    let repo = |reference: &str| format!("docker://{addr}/shop:{reference}");

    for (reference, digest) in [("v1", &w.shop_v1), ("latest", &w.shop_v2)] {
        let out = skopeo(args(&[
            "inspect",
            "--tls-verify=false",
            "--creds",
            &creds,
            &repo(reference),
        ]))
        .await
        .unwrap_or_else(|e| panic!("skopeo inspect {reference}: {e}"));
        let inspected: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(inspected["Digest"], digest.as_str(), "{reference}");
        let image = layer_digests(&w.h, digest);
        assert_eq!(inspected["Layers"], serde_json::json!(image), "{reference}");
        let mut tags = inspected["RepoTags"].as_array().unwrap().clone();
        tags.sort_by_key(|t| t.to_string());
        assert_eq!(tags, ["latest", "v1", "v2"]);
    }

    let out = skopeo(args(&[
        "list-tags",
        "--tls-verify=false",
        "--creds",
        &creds,
        &format!("docker://{addr}/shop"),
    ]))
    .await
    .unwrap_or_else(|e| panic!("skopeo list-tags: {e}"));
    let listed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(listed["Tags"], serde_json::json!(["latest", "v1", "v2"]));

    // Copy every blob out (skopeo checks each digest as it reads) and compare with the store.
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("copy");
    skopeo(args(&[
        "copy",
        "--src-tls-verify=false",
        "--src-creds",
        &creds,
        &repo("v2"),
        &format!("oci:{}:pulled", layout.display()),
    ]))
    .await
    .unwrap_or_else(|e| panic!("skopeo copy: {e}"));
    let copied = image_store::ImageStore::open(&layout).unwrap();
    assert_eq!(
        copied.resolve_tag("pulled").unwrap().as_deref(),
        Some(w.shop_v2.as_str())
    );
    let pulled: Value = serde_json::from_slice(&copied.read_blob(&w.shop_v2).unwrap()).unwrap();
    assert_eq!(
        pulled["layers"][0]["mediaType"],
        LayerCompression::Zstd.media_type()
    );
    let manifest = w.h.images.read_manifest(&w.shop_v2).unwrap();
    for digest in manifest.references.iter().chain([&w.shop_v2]) {
        assert_eq!(
            std::fs::read(copied.blob_path(digest).unwrap()).unwrap(),
            std::fs::read(w.h.images.blob_path(digest).unwrap()).unwrap(),
            "{digest}"
        );
    }

    // Wrong token, another tenant's token, another tenant's app: refused.
    for (creds, reference) in [
        (format!("x:{}", "berth_0000"), repo("v1")),
        (format!("x:{}", w.bob), repo("v1")),
        (format!("x:{}", w.alice), format!("docker://{addr}/blog:v1")),
    ] {
        let error = skopeo(args(&[
            "inspect",
            "--tls-verify=false",
            "--creds",
            &creds,
            &reference,
        ]))
        .await
        .expect_err("skopeo inspect should fail");
        assert!(
            error.contains("unauthorized") || error.contains("not found") || error.contains("unknown"),
            "{error}"
        );
    }

    // Over the wire, a streamed blob carries its length in GET and HEAD answers.
    let size =
        w.h.images
            .blob_path(&w.shop_v2_layer)
            .unwrap()
            .metadata()
            .unwrap()
            .len();
    for method in ["GET", "HEAD"] {
        let request = format!(
            "{method} /v2/shop/blobs/{} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
             Connection: close\r\n\r\n",
            w.shop_v2_layer, w.alice
        );
        let (head, body_len) = raw_exchange(addr, request).await;
        assert!(head.starts_with("http/1.1 200"), "{head}");
        assert!(
            head.contains(&format!("content-length: {size}\r\n")),
            "{method}: {head}"
        );
        assert!(!head.contains("transfer-encoding"), "{method}: {head}");
        assert_eq!(
            body_len as u64,
            if method == "GET" { size } else { 0 },
            "{method}"
        );
    }
}

/// The layer digests of a stored image, in order.
fn layer_digests(h: &Harness, manifest: &str) -> Vec<String> {
    h.images
        .read_image(manifest)
        .unwrap()
        .layers
        .into_iter()
        .map(|l| l.digest)
        .collect()
}
