//! Pushing images to, and pulling base images from, an OCI registry (oci-client), with credentials from the
//! usual docker/podman auth files. Plain HTTP is used only for loopback registries.
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr as _;

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine as _;
use futures::StreamExt as _;
use indicatif::{ProgressBar, ProgressStyle};
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation, client::ClientConfig, client::ClientProtocol};

use super::oci::{Blob, Image};

/// A parsed image reference (`registry/repository:tag` or `@sha256:...`).
pub fn parse_reference(s: &str) -> Result<Reference> {
    Reference::from_str(s).map_err(|e| anyhow!("`{s}` is not an image reference ({e})"))
}

/// Whether `registry` (host[:port]) is a loopback address: 127.0.0.0/8, ::1 or localhost.
pub fn is_loopback(registry: &str) -> bool {
    let host = if let Some(rest) = registry.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        registry
            .rsplit_once(':')
            .map_or(registry, |(h, p)| if p.chars().all(|c| c.is_ascii_digit()) { h } else { registry })
    };
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The auth files, in the order podman and docker read them.
fn auth_files() -> Vec<PathBuf> {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    let mut files = Vec::new();
    if let Some(f) = env("REGISTRY_AUTH_FILE") {
        files.push(f);
    }
    if let Some(d) = env("XDG_RUNTIME_DIR") {
        files.push(d.join("containers/auth.json"));
    }
    if let Some(h) = env("HOME") {
        files.push(h.join(".config/containers/auth.json"));
    }
    if let Some(d) = env("DOCKER_CONFIG") {
        files.push(d.join("config.json"));
    } else if let Some(h) = env("HOME") {
        files.push(h.join(".docker/config.json"));
    }
    files
}

/// Credentials for `registry` from the first auth file that names it (`auths.<registry>.auth`, base64 of
/// `user:password`); anonymous when none does.
pub fn credentials(registry: &str) -> Result<RegistryAuth> {
    credentials_in(&auth_files(), registry)
}

/// [`credentials`] from the given auth files (missing files are skipped).
pub fn credentials_in(files: &[PathBuf], registry: &str) -> Result<RegistryAuth> {
    // Docker Hub is keyed by its legacy URL in docker's file.
    let keys: Vec<String> = if registry == "docker.io" || registry == "index.docker.io" {
        vec!["docker.io".into(), "index.docker.io".into(), "https://index.docker.io/v1/".into()]
    } else {
        vec![registry.to_string(), format!("https://{registry}"), format!("http://{registry}")]
    };
    for file in files {
        let Ok(text) = std::fs::read_to_string(file) else { continue };
        let json: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("{}: not valid JSON", file.display()))?;
        for key in &keys {
            let entry = &json["auths"][key.as_str()];
            if let Some(auth) = entry["auth"].as_str().filter(|a| !a.is_empty()) {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(auth.trim())
                    .with_context(|| format!("{}: auths.{key}.auth is not base64", file.display()))?;
                let decoded = String::from_utf8(decoded)
                    .with_context(|| format!("{}: auths.{key}.auth is not UTF-8", file.display()))?;
                let (user, pass) = decoded
                    .split_once(':')
                    .with_context(|| format!("{}: auths.{key}.auth is not base64 of user:password", file.display()))?;
                return Ok(RegistryAuth::Basic(user.to_string(), pass.to_string()));
            }
            if let (Some(u), Some(p)) = (entry["username"].as_str(), entry["password"].as_str()) {
                return Ok(RegistryAuth::Basic(u.to_string(), p.to_string()));
            }
        }
    }
    Ok(RegistryAuth::Anonymous)
}

fn client_for(reference: &Reference) -> Client {
    // TLS through rustls with ring (as kube uses); installing twice is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let registry = reference.resolve_registry().to_string();
    let insecure = if is_loopback(&registry) { vec![registry] } else { vec![] };
    Client::new(ClientConfig { protocol: ClientProtocol::HttpsExcept(insecure), ..Default::default() })
}

/// Turns a client error into one that names the registry and says what kind of failure it is.
fn explain(e: OciDistributionError, registry: &str, what: &str) -> anyhow::Error {
    let auth_hint = "check the credentials for it in $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json or \
                     ~/.docker/config.json (`podman login` / `docker login` write them)";
    match &e {
        OciDistributionError::AuthenticationFailure(_) | OciDistributionError::UnauthorizedError { .. } => {
            anyhow!("{what}: registry {registry} refused the credentials ({e}); {auth_hint}")
        }
        OciDistributionError::ServerError { code: 401 | 403, .. } => {
            anyhow!("{what}: registry {registry} denied access ({e}); {auth_hint}")
        }
        OciDistributionError::RegistryError { envelope, .. }
            if envelope.errors.iter().any(|x| {
                let c = format!("{:?}", x.code);
                c.contains("Unauthorized") || c.contains("Denied")
            }) =>
        {
            anyhow!("{what}: registry {registry} denied access ({e}); {auth_hint}")
        }
        OciDistributionError::RequestError(r)
            if r.status().is_some_and(|s| s == http::StatusCode::UNAUTHORIZED || s == http::StatusCode::FORBIDDEN) =>
        {
            anyhow!("{what}: registry {registry} refused the credentials ({e}); {auth_hint}")
        }
        OciDistributionError::RequestError(r) if r.is_connect() || r.is_timeout() => {
            anyhow!("{what}: cannot reach registry {registry} (network failure: {})", causes(&e))
        }
        _ => anyhow!("{what}: registry {registry}: {e}"),
    }
}

/// An error and its sources, `a: b: c` (reqwest's own message alone says only "error sending request").
fn causes(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting an async runtime")
}

/// Pushes `image` to `target` (tag or digest reference), showing a progress bar per blob uploaded. Returns the
/// manifest digest (which is the image's own: the manifest bytes are pushed as they are).
pub fn push(image: &Image, target: &str) -> Result<String> {
    let reference = parse_reference(target)?;
    push_as(image, target, &credentials(reference.resolve_registry())?)
}

/// [`push`] with the given credentials.
pub fn push_as(image: &Image, target: &str, auth: &RegistryAuth) -> Result<String> {
    let reference = parse_reference(target)?;
    if let Some(d) = reference.digest()
        && d != image.manifest.digest
    {
        bail!("--push {target}: the image digest is {}, not {d}", image.manifest.digest);
    }
    let registry = reference.resolve_registry().to_string();
    let client = client_for(&reference);
    let what = format!("pushing {target}");
    runtime()?.block_on(async {
        // Both: checking whether a blob is there is a pull operation.
        for op in [RegistryOperation::Pull, RegistryOperation::Push] {
            client.auth(&reference, auth, op).await.map_err(|e| explain(e, &registry, &what))?;
        }
        let style = ProgressStyle::with_template("{prefix:>14} [{bar:30}] {bytes}/{total_bytes} {msg}")
            .expect("a valid template")
            .progress_chars("=> ");
        for blob in image.layers.iter().chain([&image.config]) {
            let short = &blob.digest[7..19];
            let bar = ProgressBar::new(blob.data.len() as u64).with_style(style.clone()).with_prefix(short.to_string());
            if client.blob_exists(&reference, &blob.digest).await.map_err(|e| explain(e, &registry, &what))? {
                bar.set_position(blob.data.len() as u64);
                bar.finish_with_message("already there");
                continue;
            }
            // Chunks of 4 MiB, each counted when the client takes it.
            let chunks: Vec<bytes::Bytes> = blob.data.chunks(4 << 20).map(bytes::Bytes::copy_from_slice).collect();
            let b = bar.clone();
            let stream = futures::stream::iter(chunks).map(move |c| {
                b.inc(c.len() as u64);
                Ok(c)
            });
            client
                .push_blob_stream(&reference, stream, &blob.digest, Some(blob.data.len() as u64))
                .await
                .map_err(|e| explain(e, &registry, &what))?;
            bar.finish_with_message("pushed");
        }
        let content_type = http::HeaderValue::from_str(&image.manifest.media_type)?;
        client
            .push_manifest_raw(&reference, image.manifest.data.clone(), content_type)
            .await
            .map_err(|e| explain(e, &registry, &what))?;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(image.manifest.digest.clone())
}

/// Pulls the image `source` (for this machine's platform when it is a multi-platform index).
pub fn pull(source: &str) -> Result<Image> {
    let reference = parse_reference(source)?;
    let registry = reference.resolve_registry().to_string();
    let auth = credentials(&registry)?;
    let client = client_for(&reference);
    let what = format!("pulling {source}");
    runtime()?.block_on(async {
        client.auth(&reference, &auth, RegistryOperation::Pull).await.map_err(|e| explain(e, &registry, &what))?;
        let accepted = [
            super::oci::MANIFEST_MEDIA_TYPE,
            "application/vnd.docker.distribution.manifest.v2+json",
            "application/vnd.oci.image.index.v1+json",
            "application/vnd.docker.distribution.manifest.list.v2+json",
        ];
        let (mut data, mut digest) =
            client.pull_manifest_raw(&reference, &auth, &accepted).await.map_err(|e| explain(e, &registry, &what))?;
        let mut parsed: serde_json::Value = serde_json::from_slice(&data).context("parsing the manifest")?;
        if let Some(entries) = parsed["manifests"].as_array() {
            // A multi-platform index: this machine's linux image.
            let arch = match std::env::consts::ARCH {
                "x86_64" => "amd64",
                "aarch64" => "arm64",
                other => other,
            };
            let entry = entries
                .iter()
                .find(|m| m["platform"]["os"] == "linux" && m["platform"]["architecture"] == arch)
                .with_context(|| format!("{what}: the index has no linux/{arch} image"))?;
            let platform_digest = entry["digest"].as_str().context("index entry without a digest")?.to_string();
            let by_digest = reference.clone_with_digest(platform_digest);
            (data, digest) = client
                .pull_manifest_raw(&by_digest, &auth, &accepted[..2])
                .await
                .map_err(|e| explain(e, &registry, &what))?;
            parsed = serde_json::from_slice(&data).context("parsing the platform manifest")?;
        }
        let media_type = parsed["mediaType"].as_str().unwrap_or(super::oci::MANIFEST_MEDIA_TYPE).to_string();
        let manifest = Blob { media_type, digest, data: data.to_vec() };
        let mut blobs = Vec::new();
        let m = &parsed;
        for d in std::iter::once(&m["config"]).chain(m["layers"].as_array().into_iter().flatten()) {
            let digest = d["digest"].as_str().context("manifest: descriptor without a digest")?.to_string();
            let media_type = d["mediaType"].as_str().unwrap_or_default().to_string();
            let desc = oci_client::manifest::OciDescriptor {
                digest: digest.clone(),
                media_type: media_type.clone(),
                ..Default::default()
            };
            let mut out = Vec::new();
            client.pull_blob(&reference, &desc, &mut out).await.map_err(|e| explain(e, &registry, &what))?;
            let blob = Blob::new(&media_type, out);
            if blob.digest != digest {
                bail!("{what}: blob {digest} does not match its digest");
            }
            blobs.push(blob);
        }
        let by_digest: std::collections::HashMap<String, Blob> =
            blobs.into_iter().map(|b| (b.digest.clone(), b)).collect();
        Image::from_manifest(manifest, |d, _| by_digest.get(d).cloned().with_context(|| format!("blob {d} missing")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_come_from_the_first_auth_file_naming_the_registry() {
        let dir = std::env::temp_dir().join(format!("ako-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (a, b) = (dir.join("a.json"), dir.join("b.json"));
        // "u:p" and "v:q" in base64.
        std::fs::write(&a, r#"{"auths":{"reg.example:5000":{"auth":"dTpw"}}}"#).unwrap();
        std::fs::write(
            &b,
            r#"{"auths":{"reg.example:5000":{"auth":"djpx"},"https://index.docker.io/v1/":{"auth":"djpx"}}}"#,
        )
        .unwrap();
        let files = [dir.join("missing.json"), a.clone(), b.clone()];
        let basic = |r: &str| match credentials_in(&files, r).unwrap() {
            RegistryAuth::Basic(u, p) => format!("{u}:{p}"),
            other => format!("{other:?}"),
        };
        assert_eq!(basic("reg.example:5000"), "u:p");
        assert_eq!(basic("docker.io"), "v:q");
        assert_eq!(basic("other.example"), "Anonymous");
        std::fs::write(&a, r#"{"auths":{"reg.example:5000":{"auth":"!!"}}}"#).unwrap();
        assert!(credentials_in(&files, "reg.example:5000").unwrap_err().to_string().contains("not base64"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn loopback_registries_are_recognised() {
        for r in ["127.0.0.1:5000", "127.1.2.3", "localhost:5000", "localhost", "[::1]:5000"] {
            assert!(is_loopback(r), "{r}");
        }
        for r in ["ghcr.io", "10.0.0.1:5000", "quay.io:443", "localhost.example.com"] {
            assert!(!is_loopback(r), "{r}");
        }
    }
}
