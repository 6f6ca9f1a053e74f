"""An ordinary GraphQL client (gql, from PyPI) against the real weft binary: it introspects
/weaviate/v1/graphql with the two auth headers, validates its queries against the schema it got,
and runs them."""

from __future__ import annotations

import httpx
import pytest
from gql import Client, GraphQLRequest, gql
from gql.transport.exceptions import TransportQueryError
from gql.transport.requests import RequestsHTTPTransport
from graphql import GraphQLError

CONTEXT = "http://example.org"


@pytest.fixture(scope="module")
def rest(server):
    with httpx.Client(
        base_url=server.base_url,
        headers={"X-API-KEY": server.api_key, "X-API-TOKEN": server.api_token},
        timeout=30,
    ) as c:
        yield c


@pytest.fixture(scope="module")
def cities(rest) -> dict[str, int]:
    """Two classes, a reference between them and a few cities; answers population by name."""
    for cls in (
        {"class": "GqlCountry", "properties": [{"name": "name", "@dataType": ["string"]}]},
        {
            "class": "GqlCity",
            "properties": [
                {"name": "name", "@dataType": ["string"]},
                {"name": "population", "@dataType": ["int"]},
                {"name": "inCountry", "@dataType": ["GqlCountry"]},
            ],
        },
    ):
        resp = rest.post("/schema/things", json=cls)
        assert resp.status_code == 200, resp.text
    resp = rest.post("/things", json={"thing": {"@context": CONTEXT, "@class": "GqlCountry", "schema": {"name": "Italy"}}})
    assert resp.status_code in (200, 202), resp.text
    italy = resp.json()["thingId"]
    populations = {"Rome": 2_800_000, "Milan": 1_400_000, "Turin": 870_000}
    for name, population in populations.items():
        ref = {"$cref": italy, "locationUrl": "http://localhost/", "type": "Thing"}
        schema = {"name": name, "population": population, "inCountry": ref}
        resp = rest.post("/things", json={"thing": {"@context": CONTEXT, "@class": "GqlCity", "schema": schema}})
        assert resp.status_code in (200, 202), resp.text
    return populations


@pytest.fixture(scope="module")
def client(server, cities):
    transport = RequestsHTTPTransport(
        url=f"{server.base_url}/graphql",
        headers={"X-API-KEY": server.api_key, "X-API-TOKEN": server.api_token},
        timeout=30,
    )
    with Client(transport=transport, fetch_schema_from_transport=True) as session:
        yield session


def test_introspection_gives_the_ontology_as_a_schema(client):
    schema = client.client.schema
    assert schema is not None, "gql did not fetch the schema"
    city = schema.get_type("GqlCity")
    assert city is not None, sorted(schema.type_map)
    assert {"uuid", "name", "population", "InCountry"} <= set(city.fields)
    assert str(city.fields["population"].type) == "Int"
    union = schema.get_type("GqlCityInCountryObj")
    assert [t.name for t in union.types] == ["GqlCountry"]
    get_things = schema.get_type("WeaviateLocalGetThingsObj")
    assert set(get_things.fields["GqlCity"].args) == {"first", "after", "where", "explore"}


def test_a_query_runs_with_a_filter_paging_and_a_reference(client, cities):
    query = GraphQLRequest(
        """
        query Big($min: Int!) {
          Local { Get { Things {
            GqlCity(first: 10, where: {operator: GreaterThan, path: ["population"], valueInt: $min}) {
              name population InCountry { ... on GqlCountry { name } }
            }
          } } }
        }
        """,
        variable_values={"min": 1_000_000},
    )
    result = client.execute(query)
    got = result["Local"]["Get"]["Things"]["GqlCity"]
    assert sorted(c["name"] for c in got) == sorted(n for n, p in cities.items() if p > 1_000_000)
    for c in got:
        assert c["population"] == cities[c["name"]]
        assert c["InCountry"] == [{"name": "Italy"}]


def test_getmeta_counts_and_sums(client, cities):
    result = client.execute(
        gql("{ Local { GetMeta { Things { GqlCity { meta { count } population { sum highest } } } } } }")
    )
    meta = result["Local"]["GetMeta"]["Things"]["GqlCity"]
    assert meta["meta"]["count"] == len(cities)
    assert meta["population"]["sum"] == sum(cities.values())
    assert meta["population"]["highest"] == max(cities.values())


def test_the_client_validates_against_the_introspected_schema(client):
    with pytest.raises(GraphQLError, match="nosuchfield"):
        client.execute(gql("{ Local { Get { Things { GqlCity { nosuchfield } } } } }"))


def test_a_filter_of_the_wrong_type_is_a_graphql_error(client):
    query = gql('{ Local { Get { Things { GqlCity(where: {operator: Equal, path: ["population"], valueString: "many"}) { name } } } } }')
    with pytest.raises(TransportQueryError) as err:
        client.execute(query)
    message = str(err.value)
    assert '["population"]' in message and '"many"' in message and "valueInt" in message, message
