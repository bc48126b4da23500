import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from odibi_core.core.dag import DAGBuilder, find_cycle
from odibi_core.core.errors import CircularDependencyError, SelectionError
from odibi_core.core.step import Step


def ingest(name, key):
    return Step(layer="ingest", name=name, value=f"{name}.csv", outputs={"data": key})


def transform(name, inputs, key):
    return Step(
        layer="transform", name=name, value="SELECT 1", inputs=inputs, outputs={"data": key}
    )


SEED_SHAPE = [
    ingest("read_customers", "raw_customers"),
    ingest("read_orders", "raw_orders"),
    ingest("read_products", "raw_products"),
    transform(
        "join_all",
        {"customers": "raw_customers", "orders": "raw_orders", "products": "raw_products"},
        "joined",
    ),
    transform("add_flag", {"bronze": "joined"}, "flagged"),
    Step(layer="store", name="save", value="out", inputs={"data": "flagged"}),
]


def test_levels_and_edges_of_the_seed_shape():
    dag = DAGBuilder(SEED_SHAPE).build()
    assert dag.levels() == [
        ["read_customers", "read_orders", "read_products"],
        ["join_all"],
        ["add_flag"],
        ["save"],
    ]
    assert dag.dependencies("join_all") == {"read_customers", "read_orders", "read_products"}
    assert dag.dependents("read_orders") == {"join_all"}
    assert ("join_all", "add_flag", ["joined"]) in dag.edges()


def test_ready_given_finished():
    dag = DAGBuilder(SEED_SHAPE).build()
    assert dag.ready(set()) == ["read_customers", "read_orders", "read_products"]
    assert dag.ready({"read_customers", "read_orders"}) == ["read_products"]
    assert dag.ready({"read_customers", "read_orders", "read_products"}) == ["join_all"]
    assert dag.ready({"read_customers"}, started={"read_orders"}) == ["read_products"]


def test_upstream_and_downstream():
    dag = DAGBuilder(SEED_SHAPE).build()
    assert dag.upstream_of("add_flag") == {
        "join_all",
        "read_customers",
        "read_orders",
        "read_products",
    }
    assert dag.downstream_of("read_orders") == {"join_all", "add_flag", "save"}


def test_selection_syntax():
    dag = DAGBuilder(SEED_SHAPE).build()
    assert dag.select("+join_all") == ["read_customers", "read_orders", "read_products", "join_all"]
    assert dag.select("add_flag+") == ["add_flag", "save"]
    assert dag.select("layer:transform") == ["join_all", "add_flag"]
    assert dag.select("read_orders, save") == ["read_orders", "save"]
    assert dag.select("+add_flag+") == [s.name for s in SEED_SHAPE]
    with pytest.raises(SelectionError, match="did you mean 'join_all'"):
        dag.select("join_al")
    assert dag.external_inputs(["add_flag", "save"]) == {"joined": {"join_all"}}


def test_mermaid_lists_nodes_and_labelled_edges():
    text = DAGBuilder(SEED_SHAPE).build().to_mermaid()
    assert text.startswith("flowchart LR\n")
    assert text.count("-->") == 5
    assert '|"joined"|' in text and "join_all" in text


def test_cycle_raises_named_error():
    steps = [
        transform("a", {"x": "kc"}, "ka"),
        transform("b", {"x": "ka"}, "kb"),
        transform("c", {"x": "kb"}, "kc"),
    ]
    with pytest.raises(CircularDependencyError) as info:
        DAGBuilder(steps).build()
    assert set(info.value.cycle) == {"a", "b", "c"}
    assert info.value.cycle[0] == info.value.cycle[-1]


# ----------------------------------------------------------------- properties over random DAGs


@st.composite
def random_dags(draw, max_steps=14):
    """Step i may read the outputs of any steps j < i, so the graph is acyclic."""
    n = draw(st.integers(min_value=1, max_value=max_steps))
    steps = []
    for i in range(n):
        parents = (
            draw(st.sets(st.integers(min_value=0, max_value=i - 1), max_size=min(i, 4)))
            if i
            else set()
        )
        inputs = {f"in{j}": f"k{j}" for j in sorted(parents)}
        steps.append(
            Step(
                layer="transform" if inputs else "ingest",
                name=f"s{i}",
                value="SELECT 1" if inputs else "x.csv",
                inputs=inputs,
                outputs={"data": f"k{i}"},
            )
        )
    order = draw(st.permutations(steps))  # declaration order must not matter
    return list(order)


@settings(max_examples=150, deadline=None)
@given(random_dags())
def test_topological_order_respects_every_edge(steps):
    dag = DAGBuilder(steps).build()
    position = {name: i for i, name in enumerate(dag.topological_order())}
    assert sorted(position) == sorted(s.name for s in steps)
    for producer, consumer, _ in dag.edges():
        assert position[producer] < position[consumer]


@settings(max_examples=150, deadline=None)
@given(random_dags())
def test_levels_are_minimal(steps):
    dag = DAGBuilder(steps).build()
    for name, node in dag.nodes.items():
        deps = dag.dependencies(name)
        expected = 0 if not deps else 1 + max(dag.nodes[d].level for d in deps)
        assert node.level == expected


@settings(max_examples=150, deadline=None)
@given(random_dags(), st.data())
def test_selection_is_closed_over_what_it_claims(steps, data):
    dag = DAGBuilder(steps).build()
    target = data.draw(st.sampled_from([s.name for s in steps]))
    with_ancestors = set(dag.select(f"+{target}"))
    for name in with_ancestors:
        assert dag.dependencies(name) <= with_ancestors
    with_descendants = set(dag.select(f"{target}+"))
    for name in with_descendants:
        assert dag.dependents(name) <= with_descendants
    assert target in with_ancestors and target in with_descendants


@settings(max_examples=150, deadline=None)
@given(random_dags(max_steps=10), st.data())
def test_a_back_edge_always_makes_a_detected_cycle(steps, data):
    dag = DAGBuilder(steps).build()
    # Make a step also read the output of itself or of one of its descendants.
    early = dag.step(data.draw(st.sampled_from(dag.topological_order())))
    late = dag.step(
        data.draw(st.sampled_from(sorted(dag.downstream_of(early.name) | {early.name})))
    )
    cyclic = [
        Step(
            layer="transform",
            name=s.name,
            value="SELECT 1",
            inputs={**s.inputs, "back": late.outputs["data"]},
            outputs=s.outputs,
        )
        if s.name == early.name
        else s
        for s in steps
    ]
    assert find_cycle(cyclic) is not None
    with pytest.raises(CircularDependencyError):
        DAGBuilder(cyclic).build()
