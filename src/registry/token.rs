//! Bearer-token authentication: the `WWW-Authenticate` challenge answered with a token
//! request to a realm checked to be the registry's own.

use super::*;

impl Client {
    pub(super) fn auth_error(&self, what: &str, status: u16) -> RegistryError {
        RegistryError::Auth {
            registry: self.registry.clone(),
            what: what.to_string(),
            status,
            looked: self.credentials().looked.clone(),
            had_credentials: self.credentials().credential.is_some(),
        }
    }

    /// Answers a 401 challenge: Basic with the credentials, or Bearer through the token
    /// endpoint (with the credentials when there are some, anonymously otherwise).
    pub(super) fn authenticate(&self, challenge: &str, what: &str) -> Result<(), RegistryError> {
        let (scheme, params) = challenge.split_once(' ').unwrap_or((challenge, ""));
        let cred = self.credentials().credential.as_ref();
        if scheme.eq_ignore_ascii_case("basic") {
            let Some(c) = cred else {
                return Err(self.auth_error(what, 401));
            };
            self.check_plain(what)?;
            *self.authorization.lock().unwrap_or_else(|e| e.into_inner()) = Some(c.basic_header());
            return Ok(());
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(self.auth_error(what, 401));
        }
        let params = auth::parse_challenge(params);
        let realm = params
            .get("realm")
            .ok_or_else(|| self.protocol(what, "bearer challenge without a realm"))?;
        let url = token_url(
            realm,
            params.get("service").map(String::as_str),
            &self.repository,
            params.get("scope").map(String::as_str),
        );
        let mut req = self.agent_for(&url).get(&url);
        if let Some(c) = cred {
            self.check_realm(realm, what)?;
            self.check_plain(what)?;
            req = req.header("Authorization", &c.basic_header());
        }
        let req = req
            .config()
            .timeout_global(Some(self.timeouts.base))
            .build();
        let mut resp = req.call().map_err(|e| {
            self.protocol(what, format!("token service {realm}: {}", self.explain(e)))
        })?;
        let status = resp.status().as_u16();
        if status == 401 || status == 403 {
            return Err(self.auth_error(what, status));
        }
        let token: serde_json::Value = resp
            .body_mut()
            .read_json()
            .map_err(|e| self.protocol(what, format!("token endpoint: {e}")))?;
        let token = token["token"]
            .as_str()
            .or_else(|| token["access_token"].as_str())
            .ok_or_else(|| self.protocol(what, "token endpoint returned no token"))?;
        *self.authorization.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(format!("Bearer {token}"));
        Ok(())
    }

    /// Credentials go to a token service over TLS, or to this machine: over plain HTTP to
    /// anywhere else, anyone on the path could read them.
    pub(super) fn check_realm(&self, realm: &str, what: &str) -> Result<(), RegistryError> {
        let Some(rest) = realm
            .get(..7)
            .filter(|s| s.eq_ignore_ascii_case("http://"))
            .map(|_| &realm[7..])
        else {
            return Ok(());
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        if is_loopback(host) {
            return Ok(());
        }
        Err(RegistryError::InsecureRealm {
            registry: self.registry.clone(),
            what: what.to_string(),
            realm: realm.to_string(),
        })
    }
}

/// The token request for a bearer challenge: push and pull on our repository, plus whatever the
/// challenge asks for (a cross-repository mount needs pull on the source repository).
pub(super) fn token_url(
    realm: &str,
    service: Option<&str>,
    repository: &str,
    asked: Option<&str>,
) -> String {
    let mut scopes = vec![format!("repository:{repository}:pull,push")];
    for s in asked.unwrap_or("").split(' ').filter(|s| !s.is_empty()) {
        if !scopes.iter().any(|have| have == s) {
            scopes.push(s.to_string());
        }
    }
    let mut url = format!("{realm}?");
    if let Some(service) = service {
        url.push_str(&format!("service={service}&"));
    }
    let scopes: Vec<String> = scopes.iter().map(|s| format!("scope={s}")).collect();
    url.push_str(&scopes.join("&"));
    url
}
