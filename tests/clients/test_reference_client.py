"""The client generated from the Weaviate 0.12 contract (openapi-generator, `python`) against
the real weft binary: what an existing 0.12 user's generated client does must work unchanged."""

from __future__ import annotations

import json
import uuid
from types import SimpleNamespace

import pytest

from client_support import REFERENCE_CONTRACT, assert_error_body, contract_properties

CLASS = "RefCountry"
CONTEXT = "http://example.org"
MISSING_ID = "00000000-0000-4000-8000-000000000000"


@pytest.fixture(scope="module")
def contract() -> dict:
    return json.loads(REFERENCE_CONTRACT.read_text())


@pytest.fixture(scope="module")
def api(server, ref_client):
    w = ref_client.package
    # host is the whole base URL: the generated paths (/things, /schema/things, ...) are relative
    # to the contract's basePath /weaviate/v1, which the generator puts into its default host.
    cfg = w.Configuration(
        host=server.base_url,
        # The contract's security definitions (apiKey: X-API-KEY, apiToken: X-API-TOKEN), keyed by
        # their names: UUIDs that the fixture made the server's root key.
        api_key={"apiKey": server.api_key, "apiToken": server.api_token},
    )
    auth = cfg.auth_settings()
    assert {auth["apiKey"]["key"], auth["apiToken"]["key"]} == {"X-API-KEY", "X-API-TOKEN"}
    with w.ApiClient(cfg) as client:
        yield SimpleNamespace(w=w, things=w.ThingsApi(client), schema=w.SchemaApi(client))


@pytest.fixture(scope="module")
def thing_class(api) -> str:
    """POST /schema/things: a class with a string and an int property."""
    w = api.w
    api.schema.weaviate_schema_things_create(
        w.SemanticSchemaClass(
            var_class=CLASS,
            description="A country.",
            properties=[
                w.SemanticSchemaClassProperty(name="name", data_type=["string"]),
                w.SemanticSchemaClassProperty(name="population", data_type=["int"]),
            ],
        )
    )
    return CLASS


def create_thing(api, thing_class: str, schema: dict):
    w = api.w
    return api.things.weaviate_things_create(
        w.WeaviateThingsCreateRequest(thing=w.ThingCreate(context=CONTEXT, var_class=thing_class, var_schema=schema))
    )


@pytest.fixture(scope="module")
def created(api, thing_class):
    """POST /things; the answer is the contract's ThingGetResponse."""
    return create_thing(api, thing_class, {"name": "Germany", "population": 83_000_000})


def assert_thing(thing, *, thing_id=None, schema: dict):
    assert thing.var_class == CLASS
    assert thing.context == CONTEXT
    assert thing.var_schema == schema
    assert isinstance(thing.thing_id, uuid.UUID)
    if thing_id is not None:
        assert thing.thing_id == thing_id
    assert isinstance(thing.creation_time_unix, int) and thing.creation_time_unix > 0
    assert isinstance(thing.last_update_time_unix, int)
    assert thing.last_update_time_unix >= thing.creation_time_unix


def test_schema_dump_has_the_class(api, thing_class):
    dump = api.schema.weaviate_schema_dump()
    classes = {c.var_class: c for c in dump.things.classes or []}
    assert thing_class in classes, f"GET /schema things.classes: {sorted(classes)}"
    props = {p.name: p.data_type for p in classes[thing_class].properties or []}
    assert props == {"name": ["string"], "population": ["int"]}
    assert thing_class not in {c.var_class for c in (dump.actions.classes or [])}


def test_create_answers_the_thing(created):
    assert_thing(created, schema={"name": "Germany", "population": 83_000_000})


def test_get_reads_it_back_field_for_field(api, created, contract):
    got = api.things.weaviate_things_get(created.thing_id)
    assert_thing(got, thing_id=created.thing_id, schema={"name": "Germany", "population": 83_000_000})
    assert got.creation_time_unix == created.creation_time_unix
    assert got.last_update_time_unix == created.last_update_time_unix
    assert got.key == created.key

    # The generated model drops fields the contract does not know: check the wire names too.
    raw = api.things.weaviate_things_get_without_preload_content(created.thing_id)
    assert raw.status == 200
    body = json.loads(raw.data)
    unknown = set(body) - contract_properties(contract, "ThingGetResponse")
    assert not unknown, f"GET /things/{{id}} has fields the 0.12 ThingGetResponse lacks: {sorted(unknown)}"
    assert body["thingId"] == str(created.thing_id)
    assert body["@class"] == CLASS and body["@context"] == CONTEXT


def test_patch(api, thing_class):
    w = api.w
    thing = create_thing(api, thing_class, {"name": "France", "population": 1})
    # The 0.12 contract types PatchDocument.value as an object, and the generated model
    # (value: Optional[Dict[str, Any]]) rejects anything else, so this client cannot send
    # `replace /schema/population 68000000`: patch a path whose value is an object, /schema.
    patched = api.things.weaviate_things_patch(
        thing.thing_id,
        [w.PatchDocument(op="replace", path="/schema", value={"name": "France", "population": 68_000_000})],
    )
    assert_thing(patched, thing_id=thing.thing_id, schema={"name": "France", "population": 68_000_000})
    assert patched.creation_time_unix == thing.creation_time_unix

    got = api.things.weaviate_things_get(thing.thing_id)
    assert_thing(got, thing_id=thing.thing_id, schema={"name": "France", "population": 68_000_000})


def test_list_has_the_thing(api, created):
    listed = api.things.weaviate_things_list()
    assert isinstance(listed.total_results, int)
    ids = [t.thing_id for t in listed.things or []]
    assert created.thing_id in ids, f"GET /things ids: {ids}"
    assert listed.total_results >= len(ids) >= 1
    mine = next(t for t in listed.things if t.thing_id == created.thing_id)
    assert_thing(mine, thing_id=created.thing_id, schema={"name": "Germany", "population": 83_000_000})


def test_create_with_an_unknown_property_is_422(api, thing_class):
    w = api.w
    with pytest.raises(w.ApiException) as caught:
        create_thing(api, thing_class, {"name": "Atlantis", "sunkenDepth": 5000})
    err = caught.value
    assert err.status == 422, f"expected 422, got {err.status}: {err.body}"
    assert isinstance(err, w.exceptions.UnprocessableEntityException)
    assert_error_body(err.status, err.body, mentions="sunkenDepth")
    # The contract declares ErrorResponse for this 422: the client parsed it.
    assert isinstance(err.data, w.ErrorResponse), f"not parsed as ErrorResponse: {err.data!r}"
    assert err.data.error and "sunkenDepth" in err.data.error[0].message


def test_get_an_unknown_thing_is_404(api):
    w = api.w
    with pytest.raises(w.ApiException) as caught:
        api.things.weaviate_things_get(MISSING_ID)
    err = caught.value
    assert err.status == 404, f"expected 404, got {err.status}: {err.body}"
    assert isinstance(err, w.exceptions.NotFoundException)
    assert_error_body(err.status, err.body)
