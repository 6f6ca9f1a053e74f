//! Object vectors (`VECTOR_SEARCH`) through the built `.so`, beyond the conformance kit: they
//! survive a restart and are searchable right after it (their indexes built from the store
//! when it opens), and a backup carries them.

mod common;

use common::{fresh_dir, load_plugin, open};

use abi_stable::std_types::{RString, RVec};
use futures::executor::block_on;
use weft_connector_tests::weft_plugin_api::vector::{cosine_distance, exact_nearest};
use weft_connector_tests::weft_plugin_api::{
    Capabilities, Id, ObjectKind, OpenedConnector, StoredObject, VectorHit, VectorQuery, VectorsBox,
};

const DIMS: usize = 12;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn vector(&mut self) -> Vec<f32> {
        (0..DIMS)
            .map(|_| (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0)
            .collect()
    }
}

fn thing(i: usize) -> StoredObject {
    StoredObject {
        kind: ObjectKind::Thing,
        id: Id::random(),
        class: if i.is_multiple_of(2) { "City" } else { "Town" }.into(),
        context: "".into(),
        owner: Id([(i % 3) as u8 + 1; 16]),
        created_ms: i as i64,
        updated_ms: i as i64,
        properties_json: format!(r#"{{"n":{i}}}"#).into(),
    }
}

fn vectors(c: &OpenedConnector) -> &VectorsBox {
    c.vectors.as_ref().expect("a 1.5 plugin")
}

/// 200 Things with vectors (in two classes), 20 of them deleted.
fn fill(c: &OpenedConnector, rng: &mut Rng) -> Vec<(StoredObject, Vec<f32>)> {
    let mut held = Vec::new();
    for i in 0..200 {
        let (o, v) = (thing(i), rng.vector());
        block_on(vectors(c).create_object_with_vector(o.clone(), RVec::from(v.clone()))).unwrap();
        held.push((o, v));
    }
    for (o, _) in held.iter().step_by(10) {
        block_on(c.connector.delete_object(o.kind, o.id)).unwrap();
    }
    held.into_iter()
        .enumerate()
        .filter(|(i, _)| !i.is_multiple_of(10))
        .map(|(_, h)| h)
        .collect()
}

fn search(c: &OpenedConnector, class: &str, v: &[f32], k: u64) -> Vec<VectorHit> {
    let q = VectorQuery {
        kind: ObjectKind::Thing,
        class: class.into(),
        owners: RVec::new(),
        filter_json: RString::new(),
        vector: RVec::from(v.to_vec()),
        k,
        max_distance: 2.0,
    };
    block_on(vectors(c).search_vectors(q)).unwrap().into_vec()
}

/// Every held vector is answered by `get_vector`, and searches (every class, one class) find
/// at least 90 % of the exact 10 nearest with true distances; deleted objects never.
fn check(c: &OpenedConnector, held: &[(StoredObject, Vec<f32>)], rng: &mut Rng) {
    for (o, v) in held {
        let got = block_on(vectors(c).get_vector(o.kind, o.id)).unwrap();
        assert_eq!(got.into_option().map(RVec::into_vec).as_ref(), Some(v));
    }
    let (mut found, mut wanted) = (0, 0);
    for round in 0..12 {
        let class = ["", "City", "Town"][round % 3];
        let v = rng.vector();
        let got = search(c, class, &v, 10);
        let pass = held
            .iter()
            .filter(|(o, _)| class.is_empty() || o.class.as_str() == class);
        let want = exact_nearest(pass.map(|(o, v)| (o, v.as_slice())), &v, 10, 2.0);
        assert_eq!(got.len(), want.len());
        for hit in &got {
            let (_, stored) = held
                .iter()
                .find(|(o, _)| o.id == hit.object.id)
                .expect("only current objects of the class are found");
            assert!((hit.distance - cosine_distance(stored, &v)).abs() < 1e-5);
        }
        wanted += want.len();
        found += want
            .iter()
            .filter(|w| got.iter().any(|h| h.object.id == w.object.id))
            .count();
    }
    assert!(found * 10 >= wanted * 9, "recall {found} of {wanted}");
}

#[test]
fn declares_vector_search() {
    assert!(load_plugin()
        .capabilities
        .contains(Capabilities::VECTOR_SEARCH));
}

/// Closed and reopened, the store answers the same vectors and searches (its indexes built
/// from the database at open: nothing is saved beside it); the `vectors` directory of an older
/// version's index files is removed at open.
#[test]
fn vectors_survive_a_restart_and_old_index_files_are_removed() {
    let plugin = load_plugin();
    let dir = fresh_dir("vectors", "restart");
    let mut rng = Rng(0x7777_1234_4321_7777);
    let held = {
        let c = open(&plugin, &dir);
        let held = fill(&c, &mut rng);
        check(&c, &held, &mut rng);
        held
    };
    assert!(!dir.join("vectors").exists(), "no index files");
    {
        let c = open(&plugin, &dir);
        check(&c, &held, &mut rng);
    }
    std::fs::create_dir_all(dir.join("vectors")).unwrap();
    std::fs::write(dir.join("vectors").join("manifest.json"), "{}").unwrap();
    std::fs::write(dir.join("vectors").join("thing-City-0.usearch"), "old").unwrap();
    let c = open(&plugin, &dir);
    assert!(!dir.join("vectors").exists(), "removed at open");
    check(&c, &held, &mut rng);
}

/// A backup holds every vector: the copy answers them and searches with them (its indexes
/// built from its own tables at open).
#[test]
fn a_backup_carries_vectors() {
    let plugin = load_plugin();
    let mut rng = Rng(0x2468_ace0_1357_9bdf);
    let source = open(&plugin, &fresh_dir("vectors", "source"));
    let held = fill(&source, &mut rng);
    let copy_dir = fresh_dir("vectors", "copy");
    let maintenance = source.maintenance.as_ref().expect("a 1.3 plugin");
    block_on(maintenance.backup(copy_dir.display().to_string().into())).unwrap();
    assert!(
        !copy_dir.join("vectors").exists(),
        "only the database is copied"
    );
    let copy = open(&plugin, &copy_dir);
    check(&copy, &held, &mut rng);
    // The copy's vectors are its own.
    let (o, v) = &held[0];
    let moved: Vec<f32> = v.iter().map(|x| -x).collect();
    block_on(vectors(&copy).update_object_with_vector(o.clone(), RVec::from(moved.clone())))
        .unwrap();
    let in_source = block_on(vectors(&source).get_vector(o.kind, o.id)).unwrap();
    assert_eq!(
        in_source.into_option().map(RVec::into_vec).as_ref(),
        Some(v)
    );
    assert_eq!(search(&copy, "", &moved, 1)[0].object.id, o.id);
}
