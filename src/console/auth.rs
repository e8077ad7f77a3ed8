//! The console's credentials: one-use login codes (60 s) that `orca ui`
//! mints with the workspace token, and the browser sessions they open.
//! Only SHA-256 digests of codes and session ids are kept, so lookups never
//! compare raw secrets and nothing secret sits in memory dumps of the maps.
//! Time is an argument (`now`): the rules are tested with a clock.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::daemon::info::random_token;

/// How long a login code is valid.
pub const CODE_TTL: Duration = Duration::from_secs(60);
/// How long a browser session lasts (then `orca ui` again).
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// At most this many live codes and sessions (the oldest go first).
const MAX_LIVE: usize = 256;

type Key = [u8; 32];

fn key(secret: &str) -> Key {
    Sha256::digest(secret.as_bytes()).into()
}

/// A browser session: its CSRF token rides in the page (never the
/// workspace token) and must come back in `x-orca-csrf`.
#[derive(Clone, Debug)]
pub struct Session {
    pub csrf: String,
    pub expires: Instant,
}

/// Why a login code was refused (both answer 401; the reason is logged).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    #[error("this login code is unknown or was already used")]
    Unknown,
    #[error("this login code expired")]
    Expired,
}

/// Codes and sessions of one served workspace.
#[derive(Debug)]
pub struct ConsoleAuth {
    /// The cookie's name: per port, as cookies are not port-scoped and two
    /// workspaces may serve on the same loopback host.
    pub cookie: String,
    /// `http://<addr>`: where `orca ui`'s links point.
    pub base_url: String,
    codes: Mutex<HashMap<Key, Instant>>,
    sessions: Mutex<HashMap<Key, Session>>,
}

/// A newly opened session: the raw id goes in the cookie, once.
pub struct Opened {
    pub id: String,
    pub session: Session,
}

impl ConsoleAuth {
    pub fn new(addr: std::net::SocketAddr) -> Self {
        Self {
            cookie: format!("orca_session_{}", addr.port()),
            base_url: format!("http://{addr}"),
            codes: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
        }
    }

    /// A new one-use code, valid for [`CODE_TTL`] from `now`.
    pub fn mint(&self, now: Instant) -> String {
        let code = random_token();
        if let Ok(mut codes) = self.codes.lock() {
            codes.retain(|_, exp| *exp > now);
            bound(&mut codes, |e| *e);
            codes.insert(key(&code), now + CODE_TTL);
        }
        code
    }

    /// Uses up `code` and opens a session. A code is removed on its first
    /// presentation, valid or expired: a second use is always refused.
    pub fn login(&self, code: &str, now: Instant) -> Result<Opened, LoginError> {
        let expires = self
            .codes
            .lock()
            .ok()
            .and_then(|mut c| c.remove(&key(code)))
            .ok_or(LoginError::Unknown)?;
        if expires <= now {
            return Err(LoginError::Expired);
        }
        let id = random_token();
        let session = Session {
            csrf: random_token(),
            expires: now + SESSION_TTL,
        };
        if let Ok(mut s) = self.sessions.lock() {
            s.retain(|_, v| v.expires > now);
            bound(&mut s, |v| v.expires);
            s.insert(key(&id), session.clone());
        }
        Ok(Opened { id, session })
    }

    /// The live session whose id is `id`.
    pub fn session(&self, id: &str, now: Instant) -> Option<Session> {
        let s = self.sessions.lock().ok()?;
        s.get(&key(id)).filter(|v| v.expires > now).cloned()
    }

    /// Ends a session (logout).
    pub fn end(&self, id: &str) {
        if let Ok(mut s) = self.sessions.lock() {
            s.remove(&key(id));
        }
    }

    /// The session id in a `Cookie` header value, if it carries ours.
    pub fn session_id<'a>(&self, cookie_header: &'a str) -> Option<&'a str> {
        cookie_header.split(';').find_map(|c| {
            let (name, value) = c.trim().split_once('=')?;
            (name == self.cookie).then_some(value.trim())
        })
    }

    /// The `Set-Cookie` value for a new session.
    pub fn set_cookie(&self, id: &str) -> String {
        format!(
            "{}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
            self.cookie,
            SESSION_TTL.as_secs()
        )
    }

    /// The `Set-Cookie` value that removes the session cookie.
    pub fn clear_cookie(&self) -> String {
        format!(
            "{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0",
            self.cookie
        )
    }
}

/// Keeps at most [`MAX_LIVE`] entries, dropping the soonest to expire.
fn bound<V>(m: &mut HashMap<Key, V>, expiry: impl Fn(&V) -> Instant) {
    while m.len() >= MAX_LIVE {
        let Some(k) = m.iter().min_by_key(|(_, v)| expiry(v)).map(|(k, _)| *k) else {
            return;
        };
        m.remove(&k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(port: u16) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn a_code_opens_one_session_once() {
        let a = ConsoleAuth::new(at(7420));
        let t0 = Instant::now();
        let code = a.mint(t0);
        let opened = a.login(&code, t0 + Duration::from_secs(59)).expect("fresh");
        assert!(a.session(&opened.id, t0).is_some());
        assert_eq!(a.login(&code, t0).err(), Some(LoginError::Unknown));
        assert!(a.session("nope", t0).is_none());
        a.end(&opened.id);
        assert!(a.session(&opened.id, t0).is_none());
    }

    #[test]
    fn an_expired_code_is_refused_and_used_up() {
        let a = ConsoleAuth::new(at(1));
        let t0 = Instant::now();
        let code = a.mint(t0);
        assert_eq!(
            a.login(&code, t0 + CODE_TTL).err(),
            Some(LoginError::Expired)
        );
        assert_eq!(a.login(&code, t0).err(), Some(LoginError::Unknown));
    }

    #[test]
    fn sessions_expire_and_cookies_are_per_port() {
        let a = ConsoleAuth::new(at(9));
        let t0 = Instant::now();
        let code = a.mint(t0);
        let s = a.login(&code, t0).expect("login");
        assert!(a.session(&s.id, t0 + SESSION_TTL).is_none());
        let header = format!("x=1; orca_session_9={}; orca_session_10=zz", s.id);
        assert_eq!(a.session_id(&header), Some(s.id.as_str()));
        let c = a.set_cookie("abc");
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict"));
        assert!(c.starts_with("orca_session_9=abc;"));
    }

    #[test]
    fn live_codes_are_bounded() {
        let a = ConsoleAuth::new(at(2));
        let t0 = Instant::now();
        let first = a.mint(t0);
        for _ in 0..MAX_LIVE {
            a.mint(t0 + Duration::from_secs(1));
        }
        assert!(a.login(&first, t0).is_err());
    }
}
