//! Which certificates a registry's TLS may chain to: the system's bundle and `--registry-ca`
//! files, read bounded and checked to be PEM certificates.

use super::*;

/// The CAs a registry's certificate may chain to: the system's (`SSL_CERT_FILE`, else the
/// distribution's bundle, else the Mozilla roots pinned in binpack), plus `--registry-ca`.
pub fn trust_roots(opts: &RegistryOptions) -> Result<ureq::tls::RootCerts, RegistryError> {
    let mut certs = Vec::new();
    for path in &opts.ca_files {
        let found = pem_certs(path).map_err(|why| RegistryError::Trust {
            path: path.clone(),
            why,
        })?;
        certs.extend(found);
    }
    let system = std::env::var_os("SSL_CERT_FILE")
        .map(PathBuf::from)
        .into_iter()
        .chain(SYSTEM_BUNDLES.iter().map(PathBuf::from))
        .find_map(|p| pem_certs(&p).ok());
    match system {
        Some(s) => certs.extend(s),
        None => certs.extend(
            ureq::tls::parse_pem(crate::base::rootfs::DEFAULT_CA_BUNDLE).filter_map(cert_item),
        ),
    }
    Ok(ureq::tls::RootCerts::new_with_certs(&certs))
}

/// Where Linux distributions keep their CA bundle (the list Go's crypto/x509 reads).
pub(super) const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

pub(super) fn cert_item(
    item: Result<ureq::tls::PemItem<'static>, ureq::Error>,
) -> Option<ureq::tls::Certificate<'static>> {
    match item {
        Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
        _ => None,
    }
}

/// The most a CA file may hold: Debian's whole bundle is about 220 KB.
pub(super) const PEM_LIMIT: u64 = 16 << 20;

/// The certificates in a PEM file (a regular file, read bounded); none is an error (a wrong
/// file given).
pub(super) fn pem_certs(path: &Path) -> Result<Vec<ureq::tls::Certificate<'static>>, String> {
    let bytes = crate::support::bounded::read(path, PEM_LIMIT).map_err(|e| e.to_string())?;
    let certs: Vec<_> = ureq::tls::parse_pem(&bytes).filter_map(cert_item).collect();
    if certs.is_empty() {
        return Err("no PEM certificate in it".into());
    }
    Ok(certs)
}

/// Checks a CA bundle to ship in an image (`--ca-certs`): a regular file of PEM certificates,
/// at least one and nothing else (a private key, a password file named by mistake or by a
/// hostile config, never goes into an image). Returns how many certificates it holds.
pub fn check_ca_bundle(path: &Path) -> Result<usize, String> {
    let bytes = crate::support::bounded::read(path, PEM_LIMIT).map_err(|e| e.to_string())?;
    let mut certs = 0;
    for item in ureq::tls::parse_pem(&bytes) {
        match item {
            Ok(ureq::tls::PemItem::Certificate(_)) => certs += 1,
            Ok(_) => return Err("it holds a PEM item that is not a certificate (a key?)".into()),
            Err(e) => return Err(format!("not a PEM certificate bundle: {e}")),
        }
    }
    if certs == 0 {
        return Err("no PEM certificate in it".into());
    }
    Ok(certs)
}
