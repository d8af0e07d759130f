//! TLS end to end: `sluice serve --tls-cert/--tls-key` with a certificate signed by a CA
//! generated here (openssl), talked to over HTTPS by the CLI (`--ca-cert`) and by curl;
//! a client trusting another CA is refused, and so is plain HTTP on the TLS port.

use sluice_tests::{sluice_bin, stderr, stdout, MasterProcess};
use std::path::Path;
use std::process::Command;

fn openssl(dir: &Path, args: &[&str]) {
    let o = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        o.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A CA (`ca.pem`), a server certificate for 127.0.0.1/localhost signed by it
/// (`server.pem`, `server.key`) and an unrelated CA (`other.pem`).
fn certificates(dir: &Path) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let ca = [
        &["req", "-x509"][..],
        &ec,
        &[
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=sluice test CA",
        ],
    ]
    .concat();
    openssl(dir, &ca);
    let other = [
        &["req", "-x509"][..],
        &ec,
        &[
            "-keyout",
            "other.key",
            "-out",
            "other.pem",
            "-days",
            "2",
            "-subj",
            "/CN=another CA",
        ],
    ]
    .concat();
    openssl(dir, &other);
    let csr = [
        &["req"][..],
        &ec,
        &[
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
    ]
    .concat();
    openssl(dir, &csr);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
}

fn cli(m: &MasterProcess, data: &Path, ca: &Path, args: &[&str]) -> std::process::Output {
    Command::new(sluice_bin())
        .args(args)
        .args(["--server", &m.base, "--ca-cert"])
        .arg(ca)
        .env_remove("SLUICE_TOKEN")
        .env("SLUICE_DATA_DIR", data)
        .output()
        .expect("run the sluice CLI")
}

fn curl(url: &str, extra: &[&str]) -> std::process::Output {
    Command::new("curl")
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "20",
        ])
        .args(extra)
        .arg(url)
        .output()
        .expect("run curl")
}

#[test]
fn the_cli_and_curl_speak_https_to_a_master_and_a_wrong_ca_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    std::fs::create_dir_all(&pki).unwrap();
    certificates(&pki);
    let data = dir.path().join("data");
    let cert = pki.join("server.pem");
    let key = pki.join("server.key");
    let m = MasterProcess::start(
        &data,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    assert!(m.base.starts_with("https://127.0.0.1:"), "{}", m.base);

    // The CLI, trusting the CA that signed the master's certificate.
    let o = cli(&m, &data, &pki.join("ca.pem"), &["job", "list"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = cli(&m, &data, &pki.join("ca.pem"), &["token", "list"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("admin"), "{}", stdout(&o));

    // curl with the same CA and the admin token.
    let token = m.admin_token();
    let auth = format!("Authorization: Bearer {token}");
    let url = format!("{}/api/v1/jobs", m.base);
    let ca = pki.join("ca.pem");
    let o = curl(&url, &["--cacert", ca.to_str().unwrap(), "-H", &auth]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "200");

    // Another CA: both clients refuse the master's certificate.
    let other = pki.join("other.pem");
    let o = cli(&m, &data, &other, &["job", "list"]);
    assert!(
        !o.status.success(),
        "the CLI trusted a certificate its CA did not sign"
    );
    let err = stderr(&o).to_lowercase();
    assert!(
        err.contains("certificate") || err.contains("issuer"),
        "{err}"
    );
    assert!(
        !err.contains(&token),
        "the token leaked into an error message"
    );
    let o = curl(&url, &["--cacert", other.to_str().unwrap(), "-H", &auth]);
    assert!(
        !o.status.success(),
        "curl trusted a certificate its CA did not sign"
    );

    // Plain HTTP on the TLS port gets no HTTP answer.
    let plain = url.replacen("https://", "http://", 1);
    let o = curl(&plain, &["-H", &auth]);
    assert_ne!(stdout(&o), "200", "plain HTTP was served on the TLS port");

    // The master's log names https and says nothing about clear-text tokens.
    let log = m.log();
    assert!(log.contains("listening on https://"), "{log}");
    assert!(!log.contains(&token));
}
