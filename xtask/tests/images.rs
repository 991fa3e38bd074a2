//! The images `cargo xtask image` builds, checked with the real tools: a registry (Debian's docker-registry, the
//! CNCF distribution registry) on loopback that our pusher pushes to, skopeo, buildah, opm, podman with runc, and
//! OLM on the local control plane. The Debian packages are installed when missing (tools::ensure_debian_packages);
//! nothing is skipped.
use std::collections::BTreeMap;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ako_testbed::tools::{self, Tool};
use serde_json::Value;
use xtask::image::layer::{Node, Tree, read_layer};
use xtask::image::oci::Image;
use xtask::image::{self, registry};
use xtask::packaging::images;
use xtask::project::{self, paths};

fn root() -> PathBuf {
    project::default_root()
}

fn ensure_tools() {
    tools::ensure_debian_packages(tools::IMAGE_PACKAGES).expect("installing the container tools");
}

/// A folder under the temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("ako-images-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `cmd` to completion, at most 10 minutes (a hung podman, buildah or skopeo fails the test instead of
/// hanging the run), and asserts it succeeded.
fn run(cmd: &mut Command) -> Output {
    let shown = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{shown}: {e}"));
    // Drain both pipes on threads so a chatty child never blocks on a full pipe.
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stdout, &mut b);
        b
    });
    let err_reader = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stderr, &mut b);
        b
    });
    let deadline = Instant::now() + Duration::from_secs(600);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap_or_else(|e| panic!("{shown}: {e}")) {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{shown}: still running after 10 minutes; killed");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = Output { status, stdout: out_reader.join().unwrap(), stderr: err_reader.join().unwrap() };
    assert!(
        out.status.success(),
        "{shown}: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn wait_port(addr: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "{what} did not listen on {addr} within 60 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `docker-registry serve` on a free loopback port with storage in a temp folder; stopped (by pid) on drop.
struct Registry {
    child: Child,
    addr: String,
    dir: TempDir,
}

impl Registry {
    fn start(name: &str) -> Registry {
        Registry::start_with(name, None)
    }

    /// A registry; with `htpasswd` (an htpasswd file's text), one that demands those credentials.
    fn start_with(name: &str, htpasswd: Option<&str>) -> Registry {
        ensure_tools();
        let dir = TempDir::new(&format!("registry-{name}"));
        let port = ako_testbed::cluster::net::free_port().unwrap();
        let addr = format!("127.0.0.1:{port}");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
            dir.0.join("data").display()
        );
        if let Some(text) = htpasswd {
            let path = dir.0.join("htpasswd");
            std::fs::write(&path, text).unwrap();
            config.push_str(&format!("auth:\n  htpasswd:\n    realm: test\n    path: {}\n", path.display()));
        }
        let config_path = dir.0.join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let log = std::fs::File::create(dir.0.join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting docker-registry");
        // Owned before waiting, so a registry that never listens is still stopped (Drop) when the test fails.
        let registry = Registry { child, addr, dir };
        wait_port(&registry.addr, "docker-registry");
        registry
    }

    /// The registry's own temp folder.
    fn dir(&self) -> &Path {
        &self.dir.0
    }

    fn reference(&self, repo: &str, tag: &str) -> String {
        format!("{}/{repo}:{tag}", self.addr)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// podman with its own storage (vfs) in a temp folder, runc and cgroupfs (what works on these machines).
/// One podman at a time: rootful podman shares its lock segment across storage roots, and a fresh root's first
/// run resets it, which could pull the locks from under another test's running container.
struct Podman {
    dir: TempDir,
    _one_at_a_time: std::sync::MutexGuard<'static, ()>,
}

impl Podman {
    fn new(name: &str) -> Podman {
        static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
        ensure_tools();
        let guard = ONE.lock().unwrap_or_else(|p| p.into_inner());
        Podman { dir: TempDir::new(&format!("podman-{name}")), _one_at_a_time: guard }
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("podman");
        c.arg("--root")
            .arg(self.dir.0.join("root"))
            .arg("--runroot")
            .arg(self.dir.0.join("runroot"))
            .arg("--tmpdir")
            .arg(self.dir.0.join("tmp"))
            .args([
                "--storage-driver",
                "vfs",
                "--runtime",
                "runc",
                "--cgroup-manager",
                "cgroupfs",
                "--events-backend",
                "file",
            ]);
        c
    }

    fn pull(&self, reference: &str) {
        run(self.cmd().args(["pull", "--quiet", "--tls-verify=false", reference]));
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.cmd().args(["rm", "--all", "--force"]).stdin(Stdio::null()).output();
    }
}

/// The labels `LABEL key=value` lines of a Dockerfile declare (values optionally JSON-quoted).
fn dockerfile_labels(path: &str) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(root().join(path)).unwrap();
    text.lines()
        .filter_map(|l| l.strip_prefix("LABEL "))
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or_else(|| panic!("{path}: LABEL without `=`: {kv}"));
            let v = if v.starts_with('"') { serde_json::from_str(v).unwrap() } else { v.to_string() };
            (k.to_string(), v)
        })
        .collect()
}

fn skopeo_inspect(reference: &str) -> Value {
    let out = run(Command::new("skopeo").args(["inspect", "--tls-verify=false"]).arg(format!("docker://{reference}")));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn skopeo_labels(reference: &str) -> BTreeMap<String, String> {
    serde_json::from_value(skopeo_inspect(reference)["Labels"].clone()).unwrap()
}

/// The operator's release binary (static), built once per test run.
fn operator_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        xtask::operator_build::build_operator_binary(&root()).expect("building the static operator binary")
    })
}

/// The files of an image: its layers applied in order.
fn image_tree(img: &Image) -> Tree {
    let mut tree = Tree::default();
    for layer in &img.layers {
        tree.entries.extend(read_layer(&layer.data).unwrap().entries);
    }
    tree
}

fn files(tree: &Tree) -> BTreeMap<String, (u32, Vec<u8>)> {
    tree.entries
        .iter()
        .filter_map(|(p, n)| match n {
            Node::File { mode, data, .. } => Some((p.clone(), (*mode, data.clone()))),
            Node::Dir { .. } => None,
        })
        .collect()
}

fn dirs(tree: &Tree) -> Vec<String> {
    tree.entries.iter().filter(|(_, n)| matches!(n, Node::Dir { .. })).map(|(p, _)| p.clone()).collect()
}

#[test]
fn dockerfiles_are_rendered_from_the_image_specs() {
    let root = root();
    let want = [
        ("Dockerfile", xtask::image::dockerfile::operator_dockerfile().unwrap()),
        (paths::CATALOG_DOCKERFILE, xtask::image::dockerfile::catalog_dockerfile().unwrap()),
    ];
    for (path, text) in want {
        assert_eq!(
            std::fs::read_to_string(root.join(path)).unwrap(),
            text,
            "{path} differs from what the code renders: run `cargo xtask image dockerfiles`"
        );
    }
    let version = project::workspace_version();
    assert_eq!(dockerfile_labels("Dockerfile"), image::operator_spec(&version).runtime.labels);
    assert_eq!(dockerfile_labels(paths::CATALOG_DOCKERFILE), image::catalog_spec().runtime.labels);
    let bundle = xtask::packaging::bundle::read_dir(&root.join(paths::BUNDLE)).unwrap();
    assert_eq!(dockerfile_labels(paths::BUNDLE_DOCKERFILE), bundle.annotations);
    let operator = std::fs::read_to_string(root.join("Dockerfile")).unwrap();
    assert!(operator.contains(&format!("\nUSER {}\n", image::NONROOT)));
    assert!(operator.contains(&format!("\nENTRYPOINT [\"{}\"]", image::OPERATOR_BINARY)));
    let catalog = std::fs::read_to_string(root.join(paths::CATALOG_DOCKERFILE)).unwrap();
    assert!(
        catalog.contains(&format!("\nCMD {}\n", serde_json::to_string(&image::catalog_spec().runtime.cmd).unwrap()))
    );
}

#[test]
fn bundle_image_is_reproducible_and_opm_renders_it_from_the_registry() {
    let root = root();
    let (one, tag) = images::bundle_image(&root).unwrap();
    let (two, _) = images::bundle_image(&root).unwrap();
    assert_eq!(one.manifest.digest, two.manifest.digest, "two builds of the bundle image differ");
    assert_eq!(one.manifest.data, two.manifest.data);

    let reg = Registry::start("bundle");
    let reference = reg.reference("aerospike-kubernetes-operator-bundle", &tag);
    let digest = registry::push(&one, &reference).unwrap();
    assert_eq!(digest, one.manifest.digest);

    // skopeo reads back our digest and exactly the labels bundle.Dockerfile declares.
    let inspected = skopeo_inspect(&reference);
    assert_eq!(inspected["Digest"], one.manifest.digest.as_str());
    let labels: BTreeMap<String, String> = serde_json::from_value(inspected["Labels"].clone()).unwrap();
    assert_eq!(labels, dockerfile_labels(paths::BUNDLE_DOCKERFILE));

    // opm pulls the image from the registry and renders the same bundle as from the folder.
    let opm = tools::ensure(Tool::Opm).unwrap();
    let out = run(Command::new(&opm).args(["render", &reference, "--use-http", "-o", "json"]).current_dir(reg.dir()));
    let mut from_image: Value = serde_json::from_slice(&out.stdout).unwrap();
    let out = run(Command::new(&opm).arg("render").arg(root.join(paths::BUNDLE)).args(["-o", "json"]));
    let mut from_dir: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(from_image["image"], reference.as_str());
    // Only the image differs: a folder has none, and opm lists the bundle image among the related images.
    for v in [&mut from_image, &mut from_dir] {
        v.as_object_mut().unwrap().remove("image");
        if let Some(related) = v["relatedImages"].as_array_mut() {
            related.retain(|r| r["image"] != reference.as_str());
        }
    }
    assert_eq!(from_image, from_dir);
    assert!(from_dir["properties"].as_array().unwrap().iter().any(|p| p["type"] == "olm.bundle.object"));
}

/// buildah builds bundle.Dockerfile into the same files and labels. The digests differ, as expected: buildah keeps
/// the files' modification times, stamps the build time into the config (`created`, history), writes one layer
/// per COPY and adds its own history entries and annotations.
#[test]
fn buildah_bud_of_bundle_dockerfile_matches_our_bundle_image() {
    ensure_tools();
    let root = root();
    let work = TempDir::new("buildah");
    let buildah = || {
        let mut c = Command::new("buildah");
        c.arg("--root").arg(work.0.join("root")).arg("--runroot").arg(work.0.join("runroot"));
        c.args(["--storage-driver", "vfs"]);
        c
    };
    run(buildah()
        .args([
            "bud",
            "--isolation",
            "chroot",
            "--quiet",
            "-f",
            paths::BUNDLE_DOCKERFILE,
            "-t",
            "localhost/bundle:test",
            ".",
        ])
        .current_dir(&root));
    let layout = work.0.join("layout");
    run(buildah().args(["push", "--quiet", "localhost/bundle:test"]).arg(format!("oci:{}:test", layout.display())));
    let theirs = Image::read_layout(&layout, Some("test")).unwrap();
    let (ours, _) = images::bundle_image(&root).unwrap();

    let mut their_labels = theirs.labels().unwrap();
    // buildah stamps its own version; every other label is the Dockerfile's.
    assert!(their_labels.remove("io.buildah.version").is_some());
    assert_eq!(their_labels, ours.labels().unwrap());
    let (their_tree, our_tree) = (image_tree(&theirs), image_tree(&ours));
    let (their_files, our_files) = (files(&their_tree), files(&our_tree));
    assert_eq!(their_files.keys().collect::<Vec<_>>(), our_files.keys().collect::<Vec<_>>(), "file lists differ");
    for (path, (mode, data)) in &our_files {
        let (their_mode, their_data) = &their_files[path];
        assert!(data == their_data, "{path}: contents differ");
        assert_eq!(mode, their_mode, "{path}: modes differ");
    }
    assert_eq!(dirs(&their_tree), dirs(&our_tree));
    assert_ne!(theirs.manifest.digest, ours.manifest.digest);
}

#[test]
fn operator_image_is_static_small_reproducible_and_runs_as_non_root_under_podman() {
    let root = root();
    let binary = operator_binary();
    let one = images::operator_image(&root, binary).unwrap();
    let two = images::operator_image(&root, binary).unwrap();
    assert_eq!(one.manifest.digest, two.manifest.digest, "two builds of the operator image differ");
    let size = one.layers_size();
    assert!(size < 30 << 20, "operator image layers are {size} bytes, over 30 MB");

    let tree = image_tree(&one);
    let license = std::fs::read(root.join(image::LICENSE_FILE)).unwrap();
    assert_eq!(files(&tree)[image::LICENSE_DEST.trim_start_matches('/')].1, license);
    assert!(matches!(tree.entries["tmp"], Node::Dir { mode: 0o1777, .. }));

    let reg = Registry::start("operator");
    let reference = reg.reference("aerospike-kubernetes-operator", "test");
    registry::push(&one, &reference).unwrap();
    let inspected = skopeo_inspect(&reference);
    assert_eq!(inspected["Digest"], one.manifest.digest.as_str());
    let labels: BTreeMap<String, String> = serde_json::from_value(inspected["Labels"].clone()).unwrap();
    assert_eq!(labels, dockerfile_labels("Dockerfile"));

    let podman = Podman::new("operator");
    podman.pull(&reference);
    let config = run(podman.cmd().args([
        "image",
        "inspect",
        "--format",
        "{{.Config.User}}|{{json .Config.Entrypoint}}",
        &reference,
    ]));
    assert_eq!(
        String::from_utf8_lossy(&config.stdout).trim(),
        format!("{}|[\"{}\"]", image::NONROOT, image::OPERATOR_BINARY)
    );
    // `crd` in the container prints what the binary prints on the host.
    let name = format!("ako-operator-{}", std::process::id());
    let out = run(podman.cmd().args([
        "run",
        "--name",
        &name,
        "--network",
        "none",
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=4096:4096",
        &reference,
        "crd",
    ]));
    let host = run(Command::new(binary).arg("crd"));
    assert!(!out.stdout.is_empty());
    assert_eq!(String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&host.stdout));
    assert!(String::from_utf8_lossy(&out.stdout).contains("kind: CustomResourceDefinition"));
    // The uid runc started the process with: the OCI runtime config podman handed it.
    let path = run(podman.cmd().args(["container", "inspect", "--format", "{{.OCIConfigPath}}", &name]));
    let oci_config = PathBuf::from(String::from_utf8_lossy(&path.stdout).trim());
    let spec: Value = serde_json::from_slice(&std::fs::read(&oci_config).unwrap()).unwrap();
    assert_eq!(spec["process"]["user"]["uid"], 65532, "{oci_config:?}");
    assert_eq!(spec["process"]["user"]["gid"], 65532);
}

#[test]
fn catalog_image_on_a_local_opm_base_serves_olm() {
    // Wait for the operator's release build (another test starts it) rather than race it: on two cores the
    // OLM waits below would otherwise share the CPU with an LTO build.
    let _ = operator_binary();
    let root = root();
    let base_one = images::opm_base_image().unwrap();
    let base_two = images::opm_base_image().unwrap();
    assert_eq!(base_one.manifest.digest, base_two.manifest.digest, "two builds of the opm base image differ");

    let reg = Registry::start("catalog");
    let base_ref = reg.reference("opm", Tool::Opm.version());
    registry::push(&base_one, &base_ref).unwrap();

    // The catalog OLM can use here: bundles with image "" carry their manifests (no bundle unpack pods on kwok).
    let work = TempDir::new("catalog");
    let catalog_dir = work.0.join("catalog");
    xtask::olm::prepare_catalog(&root, &catalog_dir).unwrap();
    let pulled_base = registry::pull(&base_ref).unwrap();
    assert_eq!(pulled_base.manifest.digest, base_one.manifest.digest);
    let one = images::catalog_image(&catalog_dir, &pulled_base).unwrap();
    let two = images::catalog_image(&catalog_dir, &base_one).unwrap();
    assert_eq!(one.manifest.digest, two.manifest.digest, "two builds of the catalog image differ");
    // The base's layers, unchanged, then one layer with the catalog.
    assert_eq!(one.layers.len(), base_one.layers.len() + 1);
    let digests = |layers: &[xtask::image::oci::Blob]| layers.iter().map(|l| l.digest.clone()).collect::<Vec<_>>();
    assert_eq!(digests(&one.layers[..base_one.layers.len()]), digests(&base_one.layers));

    let reference = reg.reference("aerospike-kubernetes-operator-catalog", "test");
    registry::push(&one, &reference).unwrap();
    let labels = skopeo_labels(&reference);
    for (k, v) in dockerfile_labels(paths::CATALOG_DOCKERFILE) {
        assert_eq!(labels.get(&k), Some(&v), "label {k}");
    }

    // Serve it with podman on a loopback port (host network; the cmd names the port).
    let podman = Podman::new("catalog");
    podman.pull(&reference);
    let port = ako_testbed::cluster::net::free_port().unwrap();
    let address = format!("127.0.0.1:{port}");
    let name = format!("ako-catalog-{}", std::process::id());
    run(podman.cmd().args([
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "host",
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=4096:4096",
        &reference,
        "serve",
        "/configs",
        "-p",
        &port.to_string(),
    ]));
    wait_port(&address, "the catalog image's opm serve");

    tokio::runtime::Runtime::new().unwrap().block_on(olm_resolves_from(&address, &catalog_dir, &podman, &name));
}

/// A CatalogSource by address on the podman-served catalog; an OperatorGroup and a Subscription; OLM resolves and
/// completes the InstallPlan and the CSV succeeds.
async fn olm_resolves_from(address: &str, catalog_dir: &Path, podman: &Podman, container: &str) {
    use xtask::olm::{self, Approval, GLOBAL_CATALOG_NAMESPACE, Olm, OlmKind};
    const SOURCE: &str = "aerospike-image";
    let cluster = ako_testbed::cluster::LocalCluster::start(Default::default()).await.unwrap();
    let olm = Olm::start(&cluster, catalog_dir).await.unwrap();
    let client = cluster.client().await;
    olm::apply(&client, &olm::catalog_source(SOURCE, GLOBAL_CATALOG_NAMESPACE, address)).await.unwrap();
    let sources = olm::olm_api(&client, OlmKind::CatalogSource, Some(GLOBAL_CATALOG_NAMESPACE));
    olm::wait_for("the CatalogSource on the catalog image to be READY", Duration::from_secs(120), || {
        let sources = sources.clone();
        async move { Ok(sources.get(SOURCE).await.ok().filter(|s| olm::catalog_source_state(s) == "READY")) }
    })
    .await
    .unwrap();
    let ns = "images-e2e";
    olm::ensure_namespace(&client, ns).await.unwrap();
    olm::apply(&client, &olm::operator_group("images", ns, Some(&[ns]))).await.unwrap();
    olm::apply(&client, &olm::subscription(ns, SOURCE, GLOBAL_CATALOG_NAMESPACE, Approval::Automatic, None))
        .await
        .unwrap();
    let csv_name = project::csv_name(&project::workspace_version());
    let csv = match olm::wait_installed(&client, ns, Some(&csv_name), Duration::from_secs(300)).await {
        Ok(csv) => csv,
        Err(e) => {
            let logs =
                podman.cmd().args(["logs", container]).output().map(|o| String::from_utf8_lossy(&o.stderr).to_string());
            panic!("{e:#}\n{}\ncatalog container logs: {logs:?}", olm.diagnose(&client, ns).await)
        }
    };
    assert_eq!(olm::csv_phase(&csv), "Succeeded");
    let sub = olm::olm_api(&client, OlmKind::Subscription, Some(ns)).get(project::PACKAGE).await.unwrap();
    let plan_name = sub.data["status"]["installPlanRef"]["name"].as_str().unwrap().to_string();
    let plan = olm::olm_api(&client, OlmKind::InstallPlan, Some(ns)).get(&plan_name).await.unwrap();
    assert_eq!(plan.data["status"]["phase"], "Complete");
    let sources: Vec<&str> =
        plan.data["status"]["catalogSources"].as_array().into_iter().flatten().filter_map(|s| s.as_str()).collect();
    assert!(sources.contains(&SOURCE), "the InstallPlan resolved from {sources:?}, not {SOURCE}");
    olm.stop();
    cluster.stop();
}

#[test]
fn pushing_names_the_registry_when_it_cannot_be_reached() {
    let (img, _) = images::bundle_image(&root()).unwrap();
    let port = ako_testbed::cluster::net::free_port().unwrap();
    let e = registry::push(&img, &format!("127.0.0.1:{port}/x:y")).unwrap_err().to_string();
    assert!(e.contains(&format!("127.0.0.1:{port}")) && e.contains("cannot reach"), "{e}");
    let e = registry::push(&img, "Not A Reference").unwrap_err().to_string();
    assert!(e.contains("not an image reference"), "{e}");
}

#[test]
fn push_uses_credentials_from_the_auth_file_and_reports_refusals() {
    ensure_tools();
    // A registry with htpasswd auth: wrong credentials are refused with an error naming the registry; the right
    // ones, read from an auth file, push.
    // bcrypt of "secret" (the registry accepts only bcrypt entries).
    let reg = Registry::start_with("auth", Some("ako:$2b$05$l2rZPWPs7wFSi4dTV8zBr.BU6X6AxnMhP5bdEgbco1s91wGHA8MJC\n"));
    let addr = reg.addr.clone();
    let (img, _) = images::bundle_image(&root()).unwrap();
    let auth_file = reg.dir().join("auth.json");
    let auth = |user_pass: &str| {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(user_pass);
        std::fs::write(&auth_file, format!(r#"{{"auths":{{"{addr}":{{"auth":"{b64}"}}}}}}"#)).unwrap();
        registry::credentials_in(std::slice::from_ref(&auth_file), &addr).unwrap()
    };
    let target = reg.reference("b", "v");
    let refused = registry::push_as(&img, &target, &auth("ako:wrong")).unwrap_err().to_string();
    assert!(refused.contains(&addr) && refused.contains("credentials"), "{refused}");
    let anonymous = registry::push(&img, &target).unwrap_err().to_string();
    assert!(anonymous.contains(&addr), "{anonymous}");
    assert_eq!(registry::push_as(&img, &target, &auth("ako:secret")).unwrap(), img.manifest.digest);
    assert_eq!(skopeo_inspect_auth(&target, "ako:secret")["Digest"], img.manifest.digest.as_str());
}

fn skopeo_inspect_auth(reference: &str, creds: &str) -> Value {
    let out = run(Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--creds", creds])
        .arg(format!("docker://{reference}")));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// The production catalog form: `cargo xtask catalog --bundle-image REPO@sha256:...` names the pushed bundle image
/// by digest; opm resolves that reference to the same bundle the catalog carries; regenerating keeps the pin.
#[test]
fn catalog_names_the_pushed_bundle_image_by_digest() {
    use xtask::commands::catalog::{self as catalog_command, CatalogCommand};
    use xtask::packaging::catalog;
    let root = root();
    let (img, _) = images::bundle_image(&root).unwrap();
    let reg = Registry::start("pin");
    let repo = format!("{}/aerospike-kubernetes-operator-bundle", reg.addr);
    let digest = registry::push(&img, &format!("{repo}:pinned")).unwrap();
    let pinned = format!("{repo}@{digest}");

    // A copy of the repository's bundle/ and catalog/ to update.
    let work = TempDir::new("pin");
    for dir in [paths::BUNDLE, paths::CATALOG] {
        copy_tree(&root.join(dir), &work.0.join(dir));
    }
    let command =
        |image: Option<&str>| CatalogCommand { bundle_image: image.map(str::to_string), ..Default::default() };
    let tag_only = catalog_command::run(&work.0, &command(Some(&format!("{repo}:pinned")))).unwrap_err();
    assert!(tag_only.to_string().contains("by digest"), "{tag_only:#}");
    catalog_command::run(&work.0, &command(Some(&pinned))).unwrap();
    let name = project::csv_name(&project::workspace_version());
    let entry = || catalog::Catalog::load(&work.0, paths::CATALOG).unwrap().bundle(&name).unwrap().doc.clone();
    let served = entry();
    assert_eq!(served.image, pinned);
    catalog_command::run(&work.0, &command(None)).unwrap();
    assert_eq!(entry().image, pinned, "regenerating the catalog dropped the pinned image");

    // opm pulls the pinned image and renders what the catalog serves.
    let opm = tools::ensure(Tool::Opm).unwrap();
    let out = run(Command::new(&opm).args(["render", &pinned, "--use-http", "-o", "json"]).current_dir(&work.0));
    let rendered: catalog::Bundle = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rendered, served);
}

/// buildah builds catalog.Dockerfile on our opm base image (pulled from the loopback registry) into the same files,
/// labels, entrypoint, cmd and user as our builder makes of catalog/.
#[test]
fn buildah_bud_of_catalog_dockerfile_on_our_opm_base_matches_our_catalog_image() {
    let root = root();
    let base = images::opm_base_image().unwrap();
    let reg = Registry::start("catalog-buildah");
    let base_ref = reg.reference("opm", Tool::Opm.version());
    registry::push(&base, &base_ref).unwrap();
    let work = TempDir::new("catalog-buildah");
    let buildah = || {
        let mut c = Command::new("buildah");
        c.arg("--root").arg(work.0.join("root")).arg("--runroot").arg(work.0.join("runroot"));
        c.args(["--storage-driver", "vfs"]);
        c
    };
    run(buildah()
        .args(["bud", "--isolation", "chroot", "--quiet", "--tls-verify=false", "--build-arg"])
        .arg(format!("OPM_IMAGE={base_ref}"))
        .args(["-f", paths::CATALOG_DOCKERFILE, "-t", "localhost/catalog:test", "."])
        .current_dir(&root));
    let layout = work.0.join("layout");
    run(buildah().args(["push", "--quiet", "localhost/catalog:test"]).arg(format!("oci:{}:test", layout.display())));
    let theirs = Image::read_layout(&layout, Some("test")).unwrap();
    let ours = images::catalog_image(&root.join(paths::CATALOG), &base).unwrap();

    let (tc, oc) = (theirs.configuration().unwrap(), ours.configuration().unwrap());
    let (tc, oc) = (tc.config().clone().unwrap(), oc.config().clone().unwrap());
    assert_eq!(tc.entrypoint(), oc.entrypoint());
    assert_eq!(tc.cmd(), oc.cmd());
    assert_eq!(tc.user(), oc.user());
    let mut their_labels = theirs.labels().unwrap();
    assert!(their_labels.remove("io.buildah.version").is_some());
    assert_eq!(their_labels, ours.labels().unwrap());
    let (their_tree, our_tree) = (image_tree(&theirs), image_tree(&ours));
    let (their_files, our_files) = (files(&their_tree), files(&our_tree));
    assert_eq!(their_files.keys().collect::<Vec<_>>(), our_files.keys().collect::<Vec<_>>(), "file lists differ");
    for (path, (mode, data)) in &our_files {
        let (their_mode, their_data) = &their_files[path];
        assert!(data == their_data, "{path}: contents differ");
        assert_eq!(mode, their_mode, "{path}: modes differ");
    }
    assert_eq!(dirs(&their_tree), dirs(&our_tree));
}
