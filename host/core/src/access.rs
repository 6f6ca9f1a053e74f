//! Who may do what: the [`Access`] an operation declares, and the [`Visibility`] of objects a
//! caller has.
//!
//! Every front end declares, per operation, one [`Access`]; [`Access::check`] is the only rule
//! that turns it into a yes or no. [`Visibility`] cannot mean "everyone" by accident: only a root
//! key's visibility sees everything, and the owner list of any other caller always holds at least
//! its own key.

use std::collections::HashSet;

use abi_stable::std_types::RVec;
use weft_plugin_api::{Id, ObjectQuery};

use crate::keys::{Principal, Right};
use crate::Result;

/// What an operation needs of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    /// Nothing: no key is asked for (peer-facing operations, the document itself).
    None,
    /// Any valid key; the operation applies the key tree's own rules.
    AnyKey,
    /// A key with the read right.
    Read,
    /// A key with the write right.
    Write,
    /// A key with the delete right.
    Delete,
    /// A key with the execute right (network queries).
    Execute,
    /// The root key.
    Root,
}

impl Access {
    /// Every access level, for tables and tests.
    pub const ALL: [Access; 7] = [
        Access::None,
        Access::AnyKey,
        Access::Read,
        Access::Write,
        Access::Delete,
        Access::Execute,
        Access::Root,
    ];

    /// `none`, `any-key`, `read`, `write`, `delete`, `execute` or `root`.
    pub fn as_str(self) -> &'static str {
        match self {
            Access::None => "none",
            Access::AnyKey => "any-key",
            Access::Read => "read",
            Access::Write => "write",
            Access::Delete => "delete",
            Access::Execute => "execute",
            Access::Root => "root",
        }
    }

    /// Whether a key is asked for at all.
    pub fn needs_key(self) -> bool {
        self != Access::None
    }

    /// 403 unless `p` may do what this access names; `what` says what the operation does (for
    /// the root-key message).
    pub fn check(self, p: &Principal, what: &str) -> Result<()> {
        match self {
            Access::None | Access::AnyKey => Ok(()),
            Access::Read => p.require(Right::Read),
            Access::Write => p.require(Right::Write),
            Access::Delete => p.require(Right::Delete),
            Access::Execute => p.require(Right::Execute),
            Access::Root => p.require_root(what),
        }
    }
}

#[derive(Debug, Clone)]
enum Scope {
    /// A root key: every object.
    Everything,
    /// These owners (never empty: the caller's own key is always one).
    Owners(HashSet<Id>),
}

/// The objects one caller may see. Made only by [`crate::Core::visibility`].
#[derive(Debug, Clone)]
pub struct Visibility(Scope);

impl Visibility {
    pub(crate) fn everything_for_root(p: &Principal) -> Self {
        debug_assert!(p.is_root());
        Visibility(Scope::Everything)
    }

    pub(crate) fn owners(own: Id, owners: Vec<Id>) -> Self {
        let mut set: HashSet<Id> = owners.into_iter().collect();
        set.insert(own);
        Visibility(Scope::Owners(set))
    }

    /// Whether the caller sees every object (a root key).
    pub fn sees_everything(&self) -> bool {
        matches!(self.0, Scope::Everything)
    }

    /// Whether the caller sees an object owned by `owner`.
    pub fn sees(&self, owner: Id) -> bool {
        match &self.0 {
            Scope::Everything => true,
            Scope::Owners(s) => s.contains(&owner),
        }
    }

    /// Limits `q` to what the caller sees. For a root key this leaves `owners` empty, which the
    /// connector contract reads as "every owner"; for anyone else the list is never empty.
    pub fn restrict(&self, q: &mut ObjectQuery) {
        q.owners = match &self.0 {
            Scope::Everything => RVec::new(),
            Scope::Owners(s) => {
                let mut v: Vec<Id> = s.iter().copied().collect();
                v.sort();
                RVec::from(v)
            }
        };
    }
}
