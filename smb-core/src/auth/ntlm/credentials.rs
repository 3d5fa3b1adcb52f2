//! Who authenticates: a client's [`Credentials`] (a password or an NT hash) and the server's
//! local accounts ([`UserTable`]).

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::crypto::{nt_hash, upcase};

/// A password or its NT hash. Zeroized on drop; Debug never prints it.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub enum Secret {
    /// A password; its NT hash is MD4 of its UTF-16LE form.
    Password(String),
    /// The NT hash itself (pass-the-hash, as the lab's attacker has it).
    NtHash([u8; 16]),
}

impl Secret {
    /// The NT hash (MS-NLMP 3.3.1 NTOWFv1).
    pub fn nt_hash(&self) -> [u8; 16] {
        match self {
            Secret::Password(p) => nt_hash(p),
            Secret::NtHash(h) => *h,
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Secret::Password(_) => f.write_str("Password(..)"),
            Secret::NtHash(_) => f.write_str("NtHash(..)"),
        }
    }
}

/// Who the client authenticates as.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// UserName.
    pub user: String,
    /// DomainName.
    pub domain: String,
    /// The password or its NT hash.
    pub secret: Secret,
    /// Workstation.
    pub workstation: String,
}

impl Credentials {
    /// A user with a password.
    pub fn password(user: &str, domain: &str, password: &str) -> Self {
        Credentials {
            user: user.to_owned(),
            domain: domain.to_owned(),
            secret: Secret::Password(password.to_owned()),
            workstation: String::new(),
        }
    }

    /// A user with an NT hash instead of a password.
    pub fn nt_hash(user: &str, domain: &str, nt_hash: [u8; 16]) -> Self {
        Credentials {
            user: user.to_owned(),
            domain: domain.to_owned(),
            secret: Secret::NtHash(nt_hash),
            workstation: String::new(),
        }
    }

    /// The anonymous identity: empty user, empty responses (MS-NLMP 3.1.5.1.2).
    pub fn anonymous() -> Self {
        Credentials::password("", "", "")
    }

    /// Sets the workstation name sent in AUTHENTICATE.
    pub fn with_workstation(mut self, workstation: &str) -> Self {
        self.workstation = workstation.to_owned();
        self
    }

    /// Whether these are the anonymous (null session) credentials.
    pub fn is_anonymous(&self) -> bool {
        self.user.is_empty() && matches!(&self.secret, Secret::Password(p) if p.is_empty())
    }
}

#[derive(Clone)]
pub(super) struct UserEntry {
    pub(super) name: String,
    pub(super) domain: Option<String>,
    pub(super) nt_hash: Zeroizing<[u8; 16]>,
}

/// The server's local accounts: user name (case-insensitive) -> NT hash, optionally bound
/// to one domain name. Debug lists names only.
#[derive(Clone, Default)]
pub struct UserTable {
    users: Vec<UserEntry>,
}

impl fmt::Debug for UserTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.users.iter().map(|u| &u.name))
            .finish()
    }
}

impl UserTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a user whose domain is not checked.
    pub fn add(&mut self, user: &str, secret: &Secret) {
        self.insert(user, None, secret);
    }

    /// Adds (or replaces) an account by password; names compare case-insensitively.
    pub fn add_password(&mut self, user: &str, password: &str) {
        self.add(user, &Secret::Password(password.to_owned()));
    }

    /// Adds a user that only authenticates with this domain name (case-insensitive).
    pub fn add_in_domain(&mut self, domain: &str, user: &str, secret: &Secret) {
        self.insert(user, Some(domain.to_owned()), secret);
    }

    fn insert(&mut self, user: &str, domain: Option<String>, secret: &Secret) {
        let key = upcase(user);
        self.users.retain(|u| upcase(&u.name) != key);
        self.users.push(UserEntry {
            name: user.to_owned(),
            domain,
            nt_hash: Zeroizing::new(secret.nt_hash()),
        });
    }

    /// The number of accounts.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether there is no account.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    pub(super) fn lookup(&self, user: &str) -> Option<&UserEntry> {
        let key = upcase(user);
        self.users.iter().find(|u| upcase(&u.name) == key)
    }
}
