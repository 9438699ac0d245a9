//! The scheduler's rules: which node runs each allocation of each job. Pure:
//! `constraint` (node attributes and constraint checks), `plan` (feasibility, ranking
//! and placement with reasons), `reconcile` (what a job needs), `eval` (one evaluation:
//! catalog → updates), `preview` (`job plan`), `periodic` (launch times), `dispatch`
//! (parameterized jobs' children and their queue), `gc` (finished children forgotten),
//! `volumes` (named volumes: who can mount them, access modes). The hub's
//! scheduler task applies them to each new catalog.

pub mod constraint;
pub mod dispatch;
pub mod eval;
#[cfg(test)]
pub(crate) mod fixture;
pub mod gc;
pub mod periodic;
pub mod plan;
pub mod preview;
pub mod reconcile;
pub mod volumes;
