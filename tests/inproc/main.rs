//! In-process hub tests: `rabble_hub::run` in the test's own runtime (see
//! `rabble_tests::inproc`), for the HTTP API's contract and the catalog writer. No
//! agent, broker client or other process is involved; `tests/e2e` has those.

mod acl;
mod api;
mod hostile;
mod writer;
