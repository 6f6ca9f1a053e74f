//! With `WEFT_REQUIRE_REAL_SERVERS=1` (`.ci/run` sets it) no real-server suite may skip. The
//! end-to-end suites ask for their servers through `weft_e2e_tests::real_server`, which then fails
//! instead of skipping; the connectors' own suites (`plugins/cassandra/tests`,
//! `plugins/gremlin/tests`) read the same variables, so this test fails when any of them is
//! missing in such a run — before those suites could pass by skipping.
use weft_e2e_tests::{real_server, real_servers_required, REAL_SERVERS};

#[test]
fn every_real_server_is_given_when_they_are_required() {
    if !real_servers_required() {
        return;
    }
    for (var, _, _) in REAL_SERVERS {
        assert!(
            real_server("every_real_server_is_given_when_they_are_required", var).is_some(),
            "{var}"
        );
    }
}
