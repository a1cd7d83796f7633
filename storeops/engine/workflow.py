"""Workflows: a pack's process graph, its validation, a case runner and drawings.

A pack's ``workflow:`` section (docs/workflows.md) names states (each with
the role that does the step and a duration model for simulation) and
transitions between them, guarded by conditions in the pack expression
language. ``build_workflow`` is called by the pack loader: it compiles the
guards once and checks the graph with networkx, reporting every problem with
its file, line and column through the loader's ``report`` callback, so a
workflow's errors are collected and sorted with the pack's other errors.

The runner moves one case one event at a time (``start_case`` then
``Case.advance``): the simulation and the replay of real event logs call the
same code. Every guard decision and every transition goes to the audit
trail, one record each, under table id = workflow id and rule id =
transition id. Nothing here reads a clock or a global: time is passed in.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import networkx as nx

from .errors import EvaluationError, ExpressionError, InputError, Location, PackError, did_you_mean
from .expressions import Expression, Field, compile_expression, compile_matcher
from .packs import Label

if TYPE_CHECKING:
    from .trail import Trail

CHOICES = ("first", "unique")
DURATION_MODELS = {  # model -> the keys it needs
    "fixed": ("minutes",),
    "lognormal": ("mean_minutes", "sd_minutes"),
    "exponential": ("mean_minutes",),
    "fitted": ("key",),
}


@dataclass(frozen=True, slots=True)
class Role:
    id: str
    label: Label
    location: Location


@dataclass(frozen=True, slots=True)
class Duration:
    """How long a step takes in simulation (minutes); ``fitted`` reads ``key`` from the
    replay's fitted-distribution file. Sampling is the simulation's job, not this module's."""

    model: str
    minutes: float | None = None
    mean_minutes: float | None = None
    sd_minutes: float | None = None
    key: str | None = None


@dataclass(frozen=True, slots=True)
class State:
    id: str
    label: Label
    role: str | None
    duration: Duration | None
    end: bool
    location: Location


@dataclass(frozen=True, slots=True)
class Transition:
    id: str
    source: str
    target: str
    guard: Expression | None  # None: unconditional (the only way out of its state)
    label: Label | None
    location: Location

    @property
    def guard_text(self) -> str:
        return self.guard.text if self.guard is not None else ""


@dataclass(frozen=True)
class Workflow:
    """A validated workflow: immutable, shared by every case that runs through it.

    ``outgoing[state]`` lists the transitions out of a state in pack order,
    which is the order ``choice: first`` tries them. ``graph`` is a
    networkx.DiGraph over the state ids; an edge's ``transitions`` attribute
    holds the ids of the transitions between its two states.
    """

    id: str
    label: Label | None
    start: str
    choice: str
    roles: Mapping[str, Role]
    states: Mapping[str, State]
    transitions: tuple[Transition, ...]
    pack_id: str
    pack_version: str
    pack_sha256: str
    location: Location
    graph: nx.DiGraph = field(repr=False, compare=False)
    outgoing: Mapping[str, tuple[Transition, ...]] = field(repr=False, compare=False)
    # per state: one generated function testing all its guards (the hot path)
    _matchers: Mapping[str, Callable[[Mapping[str, Any]], list[int]]] = field(
        repr=False, compare=False, default_factory=dict)

    @property
    def end_states(self) -> tuple[str, ...]:
        return tuple(s.id for s in self.states.values() if s.end)


# -- building and validating ------------------------------------------------------------------


def _label(raw: Mapping[str, str] | None) -> Label | None:
    return None if raw is None else Label(raw["zh"], raw["en"])


def build_workflow(raw: Mapping[str, Any], places: Any, fields: Mapping[str, Field],
                   constants: Mapping[str, Any], *, pack: tuple[str, str, str],
                   report: Callable[[Any], None],
                   warn: Callable[[PackError], None] | None = None) -> Workflow | None:
    """Build the workflow of a pack section, reporting each problem through ``report``.

    ``places`` locates paths inside the section (``at``, ``key``, ``scalar``,
    as the pack loader's ``_YamlPlaces``). Returns None when the section has
    errors, so no half-checked workflow is ever run.
    """
    errors: list[PackError] = []

    def error(message: str, where: Location, hint: str | None = None) -> None:
        errors.append(PackError(message, where, hint))

    roles: dict[str, Role] = {}
    for i, item in enumerate(raw.get("roles", [])):
        if item["id"] in roles:
            error(f"duplicate role '{item['id']}'", places.at(("roles", i, "id")))
            continue
        roles[item["id"]] = Role(item["id"], _label(item["label"]), places.at(("roles", i)))

    states: dict[str, State] = {}
    for i, item in enumerate(raw["states"]):
        state_id = item["id"]
        if state_id in states:
            error(f"duplicate state '{state_id}'", places.at(("states", i, "id")))
            continue
        role = item.get("role")
        if role is not None and role not in roles:
            error(f"state '{state_id}': unknown role '{role}'", places.at(("states", i, "role")),
                  did_you_mean(role, roles))
        duration = None
        if "duration" in item:
            spec = item["duration"]
            missing = [k for k in DURATION_MODELS[spec["model"]] if k not in spec]
            extra = [k for k in spec if k not in (*DURATION_MODELS[spec["model"]], "model",
                                                  "note", "source")]
            if missing or extra:
                needs = ", ".join(DURATION_MODELS[spec["model"]])
                error(f"state '{state_id}': a {spec['model']} duration takes {needs}"
                      + (f"; missing {', '.join(missing)}" if missing else "")
                      + (f"; not {', '.join(extra)}" if extra else ""),
                      places.at(("states", i, "duration")))
            duration = Duration(spec["model"], spec.get("minutes"), spec.get("mean_minutes"),
                                spec.get("sd_minutes"), spec.get("key"))
        states[state_id] = State(state_id, _label(item["label"]), role, duration,
                                 bool(item.get("end", False)), places.at(("states", i)))

    start = raw["start"]
    if start not in states:
        error(f"unknown start state '{start}'", places.at(("start",)), did_you_mean(start, states))
    if not any(s.end for s in states.values()):
        error(f"workflow '{raw['id']}' has no end state; mark one with 'end: true'",
              places.key(("states",)))

    transitions: list[Transition] = []
    seen: set[str] = set()
    for i, item in enumerate(raw["transitions"]):
        path = ("transitions", i)
        if item["id"] in seen:
            error(f"duplicate transition '{item['id']}'", places.at((*path, "id")))
        seen.add(item["id"])
        ok = True
        for key in ("from", "to"):
            if item[key] not in states:
                error(f"transition '{item['id']}': unknown state '{item[key]}'",
                      places.at((*path, key)), did_you_mean(item[key], states))
                ok = False
        guard = None
        if "when" in item:
            locate = places.scalar((*path, "when"))
            try:
                guard = compile_expression(item["when"], fields, parameters=constants,
                                           locate=locate, expect="boolean")
            except ExpressionError as exc:
                if exc.location is None:
                    exc.location = locate(0)
                errors.append(exc)
                ok = False
        if ok:
            transitions.append(Transition(item["id"], item["from"], item["to"], guard,
                                          _label(item.get("label")), places.at(path)))

    choice = raw.get("choice", "first")
    outgoing: dict[str, list[Transition]] = {state: [] for state in states}
    for transition in transitions:
        outgoing[transition.source].append(transition)
    graph = nx.DiGraph()
    for state in states.values():
        graph.add_node(state.id, label_en=state.label.en, label_zh=state.label.zh,
                       role=state.role, end=state.end)
    for transition in transitions:
        if graph.has_edge(transition.source, transition.target):
            graph.edges[transition.source, transition.target]["transitions"] += (transition.id,)
        else:
            graph.add_edge(transition.source, transition.target, transitions=(transition.id,))

    if len(transitions) == len(raw["transitions"]) and not errors:
        _check_graph(graph, states, outgoing, start, choice, fields, error, warn)
    for problem in sorted(errors, key=lambda e: e.sort_key()):
        report(problem)
    if errors:
        return None
    frozen = {state: tuple(ts) for state, ts in outgoing.items()}
    matchers = {state: compile_matcher([t.guard for t in ts], first_only=False)
                for state, ts in frozen.items() if len(ts) > 1 or (ts and ts[0].guard)}
    return Workflow(
        id=raw["id"], label=_label(raw.get("label")), start=start, choice=choice, roles=roles,
        states=states, transitions=tuple(transitions), pack_id=pack[0], pack_version=pack[1],
        pack_sha256=pack[2], location=places.at(()), graph=graph, outgoing=frozen,
        _matchers=matchers,
    )


def _check_graph(graph: nx.DiGraph, states: Mapping[str, State],
                 outgoing: Mapping[str, list[Transition]], start: str, choice: str,
                 fields: Mapping[str, Field], error: Callable[..., None],
                 warn: Callable[[PackError], None] | None) -> None:
    """The graph checks: reachability both ways, guards where a choice is made, overlaps."""
    from .analysis import UNKNOWN, overlap, satisfiable

    reached = nx.descendants(graph, start) | {start}
    ends = [s.id for s in states.values() if s.end]
    can_finish: set[str] = set(ends)
    for end in ends:
        can_finish |= nx.ancestors(graph, end)
    for state in states.values():
        if state.id not in reached:
            error(f"state '{state.id}' cannot be reached from the start state '{start}'",
                  state.location)
        if state.end and outgoing[state.id]:
            error(f"end state '{state.id}' has transitions out of it "
                  f"('{outgoing[state.id][0].id}'); an end state ends the case",
                  outgoing[state.id][0].location)
        elif not state.end and state.id not in can_finish:
            what = ("has no transition out" if not outgoing[state.id]
                    else "cannot reach an end state")
            error(f"state '{state.id}' {what}; every state must lead to an end", state.location)
    for state, out in outgoing.items():
        if len(out) > 1:
            for transition in out:
                if transition.guard is None:
                    error(f"state '{state}' has several transitions; each needs a guard "
                          f"('when'), and '{transition.id}' has none", transition.location)
        for transition in out:
            if transition.guard is not None and satisfiable(transition.guard, fields) is False:
                error(f"transition '{transition.id}' can never be taken: its guard is "
                      "contradictory", transition.location)
        if choice != "unique" or any(t.guard is None for t in out):
            continue
        for i in range(len(out)):
            for j in range(i + 1, len(out)):
                witness = overlap(out[i].guard, out[j].guard, fields)
                if witness is None:
                    continue
                if witness is UNKNOWN:
                    if warn is not None:
                        warn(PackError(f"cannot tell whether the guards of '{out[i].id}' and "
                                       f"'{out[j].id}' can both be true", out[j].location))
                    continue
                example = ", ".join(f"{k}={v!r}" for k, v in sorted(witness.items()))
                error(f"the guards of transitions '{out[i].id}' and '{out[j].id}' out of state "
                      f"'{state}' can both be true with choice 'unique', e.g. "
                      f"{example or 'any case'}", out[j].location,
                      "make them exclusive, or set 'choice: first' to take the first true one")


# -- running cases, one event at a time ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GuardDecision:
    transition: str
    target: str
    value: bool | None  # the guard's Kleene value; True for an unconditional transition


@dataclass(frozen=True, slots=True)
class Step:
    """What one ``advance`` did: ``status`` is moved, blocked (no guard true) or done."""

    case_id: Any
    ts: float
    source: str
    target: str
    status: str
    transition: str | None
    decisions: tuple[GuardDecision, ...]


class Case:
    """One case (an order, a service ticket) moving through a workflow.

    Mutable on purpose: a simulation holds thousands and advances each many
    times. ``history`` lists ``(ts, state)`` from the start, one entry per move.
    """

    __slots__ = ("_decisions", "_keys", "_trail", "attributes", "history", "id", "state",
                 "workflow")

    def __init__(self, workflow: Workflow, case_id: Any, attributes: Mapping[str, Any] | None,
                 trail: Trail | None, ts: float, keys: Mapping[str, int] | None = None,
                 decisions: bool = True) -> None:
        self.workflow = workflow
        self.id = case_id
        self.state = workflow.start
        self.attributes: dict[str, Any] = dict(attributes or {})
        self.history: list[tuple[float, str]] = [(ts, workflow.start)]
        self._trail = trail
        # a caller that never reads Step.decisions (a simulation) may skip them: telling each
        # untaken guard's false from null is most of advance's cost
        self._decisions = decisions
        self._keys: TrailKeys | None = None
        if trail is not None:
            # a simulation starts thousands of cases on one trail: it registers once (keys)
            self._keys = keys if keys is not None else register(workflow, trail)

    @property
    def done(self) -> bool:
        return self.workflow.states[self.state].end

    def advance(self, ts: float, attributes_update: Mapping[str, Any] | None = None) -> Step:
        """Apply an event: update the attributes, test the guards out of the current state
        in order, and move along the chosen transition (or stay, ``blocked``)."""
        if attributes_update:
            self.attributes.update(attributes_update)
        workflow = self.workflow
        source = self.state
        out = workflow.outgoing[source]
        if not out:
            return Step(self.id, ts, source, source, "done", None, ())
        facts = self.attributes
        matcher = workflow._matchers.get(source)
        if not self._decisions and self._trail is None:
            hits = matcher(facts) if matcher is not None else [0]
            if len(hits) > 1 and workflow.choice == "unique":
                names = ", ".join(out[k].id for k in hits)
                raise EvaluationError(f"case {self.id!r} in state '{source}': guards of "
                                      f"{names} are all true, and the workflow's choice is "
                                      "'unique'", out[hits[1]].location)
            if not hits:
                return Step(self.id, ts, source, source, "blocked", None, ())
            transition = out[hits[0]]
            self.state = transition.target
            self.history.append((ts, transition.target))
            return Step(self.id, ts, source, transition.target, "moved", transition.id, ())
        hits = [0] if matcher is None else matcher(facts)  # None: one unconditional move
        if len(hits) > 1 and workflow.choice == "unique":
            names = ", ".join(out[k].id for k in hits)
            raise EvaluationError(f"case {self.id!r} in state '{source}': guards of {names} "
                                  "are all true, and the workflow's choice is 'unique'",
                                  out[hits[1]].location)
        chosen = hits[0] if hits else None
        decisions: tuple[GuardDecision, ...] = ()
        if self._decisions:
            values: list[bool | None] = [True if k in hits else None for k in range(len(out))]
            for k, transition in enumerate(out):
                if values[k] is None:
                    # not true: tell false from null (the guard is compiled)
                    values[k] = False if transition.guard(facts) is False else None
            decisions = tuple(GuardDecision(t.id, t.target, values[k])
                              for k, t in enumerate(out))
        trail = self._trail
        if chosen is None:
            if trail is not None:  # why the case is blocked: every guard, false or null
                for transition in out:
                    _record_guard(trail, self._keys, ts, self.id, transition, facts)
            return Step(self.id, ts, source, source, "blocked", None, decisions)
        transition = out[chosen]
        self.state = transition.target
        self.history.append((ts, transition.target))
        if trail is not None:
            # one record per move: its inputs are what the guards tried read (with choice
            # 'first', the guards passed over and the one taken; its outputs name them)
            keys = self._keys
            trail.add(ts, self.id, keys[transition.id],
                      tuple([facts.get(name) for name in keys.fields[transition.id]]))
        return Step(self.id, ts, source, transition.target, "moved", transition.id, decisions)

    def run(self, ts: float, *, limit: int = 1000) -> list[Step]:
        """Advance with no new attributes until blocked or done (at most ``limit`` moves)."""
        steps = []
        for _ in range(limit):
            step = self.advance(ts)
            steps.append(step)
            if step.status != "moved" or self.done:
                break
        return steps


CaseRun = Case  # the name the issue uses


def start_case(workflow: Workflow, case_id: Any, attributes: Mapping[str, Any] | None = None,
               trail: Trail | None = None, *, ts: float = 0.0,
               keys: Mapping[str, int] | None = None, decisions: bool = True) -> Case:
    """A new case at the workflow's start state; ``ts`` is simulation or event time.

    ``keys`` is what ``register(workflow, trail)`` returned for this trail: callers that start
    many cases on one trail pass it to skip registering the transitions for every case (the
    records are the same either way). ``decisions=False`` (only without a trail) leaves
    ``Step.decisions`` empty: the case moves exactly the same, faster."""
    return Case(workflow, case_id, attributes, trail, ts, keys, decisions)


def register(workflow: Workflow, trail: Trail) -> TrailKeys:
    """Register every transition of the workflow with the trail; transition id -> trail key."""
    return _register(workflow, trail)


class TrailKeys(dict):
    """What ``register`` returns: transition id -> trail key of its move record.

    ``fields[id]`` are the fields a move record holds: under ``choice: first`` those of the
    guards passed over and of the guard taken, in order; otherwise the guard's own.
    ``guard_keys[id]`` records the guard alone, for a blocked case; ``guard_texts`` memoises
    those records' outputs by (key, the values the guard read), which spares evaluating the
    guard again to tell false from null."""

    __slots__ = ("fields", "guard_keys", "guard_texts")

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, tuple[str, ...]] = {}
        self.guard_keys: dict[str, int] = {}
        self.guard_texts: dict[tuple, str] = {}


_GUARD_MEMO_LIMIT = 1 << 14  # distinct (guard, values) outcomes kept; bounds memory


def _record_guard(trail: Trail, keys: TrailKeys, ts: float, case_id: Any,
                  transition: Transition, facts: Mapping[str, Any]) -> None:
    """One guard's record for a blocked case: its field values, and false or null."""
    guard = transition.guard
    key = keys.guard_keys[transition.id]
    values = () if guard is None else tuple([facts.get(name) for name in guard.fields])
    memo = keys.guard_texts
    try:
        text = memo.get((key, values))
    except TypeError:  # an unhashable attribute value: no memo
        text = memo_key = None
    else:
        memo_key = (key, values)
    if text is None:
        value = True if guard is None else (False if guard(facts) is False else None)
        text = _outputs_text(("guard", transition.source, transition.target, value))
        if memo_key is not None:
            if len(memo) >= _GUARD_MEMO_LIMIT:
                memo.clear()
            memo[memo_key] = text
    trail.add(ts, case_id, key, values, text)


def _register(workflow: Workflow, trail: Trail) -> TrailKeys:
    from .trail import RuleRef

    keys = TrailKeys()
    for transition in workflow.transitions:
        label = transition.label
        out = workflow.outgoing[transition.source]
        own = transition.guard.fields if transition.guard is not None else ()
        passed: tuple[Transition, ...] = ()
        fields = own
        if workflow.choice == "first":
            passed = out[:out.index(transition)]
            merged: list[str] = []
            for t in (*passed, transition):
                for name in (t.guard.fields if t.guard is not None else ()):
                    if name not in merged:
                        merged.append(name)
            fields = tuple(merged)

        def ref(fields: tuple[str, ...], outputs: str, transition=transition, label=label):
            return RuleRef(
                pack_id=workflow.pack_id, pack_version=workflow.pack_version,
                pack_sha256=workflow.pack_sha256, table_id=workflow.id,
                rule_id=transition.id, source_file=transition.location.file,
                source_line=transition.location.line, fields=fields, outputs=outputs,
                label_en=label.en if label else "", label_zh=label.zh if label else "")

        move = {"event": "transition", "from": transition.source, "to": transition.target,
                "taken": True}
        if passed:
            move["passed"] = [t.id for t in passed]
        keys[transition.id] = trail.rule(ref(fields, json.dumps(
            move, ensure_ascii=False, sort_keys=True)))
        keys.fields[transition.id] = fields
        keys.guard_keys[transition.id] = trail.rule(ref(own, json.dumps(
            {"from": transition.source, "to": transition.target}, ensure_ascii=False,
            sort_keys=True)))
    return keys


def _outputs_text(event: tuple) -> str:
    """The outputs JSON of a workflow record: (event, from, to, guard value)."""
    kind, source, target, value = event
    outputs: dict[str, Any] = {"event": kind, "from": source, "to": target,
                               "taken": kind == "transition"}
    if kind == "guard":
        outputs["guard"] = value
    return json.dumps(outputs, ensure_ascii=False, sort_keys=True)


def load_workflow(path: str | Any) -> Workflow:
    """The workflow of the pack at ``path``; InputError when the pack has none."""
    from .packs import load_pack

    pack = load_pack(path)
    if pack.workflow is None:
        raise InputError("the pack has no 'workflow' section to draw", Location(pack.path, 1, 1))
    return pack.workflow


# -- drawing -----------------------------------------------------------------------------------


def _state_text(state: State, sep: str) -> str:
    parts = [state.label.en, state.label.zh]
    if state.role:
        parts.append(f"[{state.role}]")
    return sep.join(parts)


def _edge_text(transition: Transition) -> str:
    return transition.guard_text or (transition.label.en if transition.label else "")


def to_mermaid(workflow: Workflow) -> str:
    """A Mermaid flowchart: states with English and Chinese labels, guards on the edges,
    end states in double circles. Node ids get a prefix (``end`` is a Mermaid keyword)."""

    def text(value: str) -> str:
        return value.replace('"', "#quot;")

    lines = ["flowchart TD", '  start__(( )) --> s_' + workflow.start]
    for state in workflow.states.values():
        body = text(_state_text(state, "<br/>"))
        shape = f'((("{body}")))' if state.end else f'("{body}")'
        lines.append(f"  s_{state.id}{shape}")
    for transition in workflow.transitions:
        label = _edge_text(transition)
        arrow = f'-->|"{text(transition.id + ": " + label if label else transition.id)}"|'
        lines.append(f"  s_{transition.source} {arrow} s_{transition.target}")
    return "\n".join(lines) + "\n"


def to_dot(workflow: Workflow) -> str:
    """Graphviz DOT: the same content as ``to_mermaid``; end states have two borders."""

    def quote(value: str) -> str:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'

    lines = [f"digraph {quote(workflow.id)} {{", "  rankdir=TB;",
             '  node [shape=box, style=rounded, fontname="Noto Sans CJK SC,sans-serif"];',
             "  __start [shape=point];", f"  __start -> {quote(workflow.start)};"]
    for state in workflow.states.values():
        extra = ", peripheries=2" if state.end else ""
        lines.append(f"  {quote(state.id)} [label={quote(_state_text(state, chr(10)))}{extra}];")
    for transition in workflow.transitions:
        label = _edge_text(transition)
        label = f"{transition.id}: {label}" if label else transition.id
        lines.append(f"  {quote(transition.source)} -> {quote(transition.target)} "
                     f"[label={quote(label)}];")
    return "\n".join(lines) + "\n}\n"


def render(workflow: Workflow, fmt: str) -> bytes | str:
    """The drawing in ``fmt`` (mermaid, dot: text; svg, png: bytes).

    svg and png use Graphviz's ``dot`` when it is on the PATH, else matplotlib
    (networkx's drawing, English labels: fonts for Chinese are rarely there).
    """
    if fmt == "mermaid":
        return to_mermaid(workflow)
    if fmt == "dot":
        return to_dot(workflow)
    if fmt not in ("svg", "png"):
        raise InputError(f"unknown drawing format '{fmt}'; use mermaid, dot, svg or png")
    dot = shutil.which("dot")
    if dot is not None:
        done = subprocess.run([dot, f"-T{fmt}"], input=to_dot(workflow).encode("utf-8"),
                              capture_output=True, check=False, timeout=120)
        if done.returncode != 0:
            raise InputError(f"Graphviz 'dot' failed: "
                             f"{done.stderr.decode('utf-8', 'replace').strip()[:300]}")
        return done.stdout
    try:
        import matplotlib
    except ImportError:
        raise InputError(f"{fmt} needs Graphviz ('dot') or matplotlib; install one, or use "
                         "--format mermaid|dot") from None
    return _matplotlib(workflow, fmt, matplotlib)


def _matplotlib(workflow: Workflow, fmt: str, matplotlib: Any) -> bytes:
    from matplotlib.figure import Figure  # no pyplot: no global figure state, no GUI backend

    del matplotlib
    graph = workflow.graph.copy()  # the workflow's graph is shared: never annotate it
    # layered layout: a state's layer is its distance from the start (unreached: last layer)
    depth = nx.single_source_shortest_path_length(graph, workflow.start)
    bottom = max(depth.values(), default=0) + 1
    for node in graph.nodes:
        graph.nodes[node]["layer"] = depth.get(node, bottom)
    positions = nx.multipartite_layout(graph, subset_key="layer", align="horizontal")
    positions = {node: (x, -graph.nodes[node]["layer"]) for node, (x, _) in positions.items()}
    figure = Figure(figsize=(max(8, 2.2 * len(graph) ** 0.5 * 2), 1.6 * (bottom + 1)))
    axes = figure.add_subplot()
    axes.set_axis_off()
    ends = [n for n in graph.nodes if workflow.states[n].end]
    nx.draw_networkx_nodes(graph, positions, ax=axes, node_color="#e8f0fe", node_size=900)
    nx.draw_networkx_nodes(graph, positions, nodelist=ends, ax=axes, node_color="#d4edda",
                           node_size=1100, edgecolors="black", linewidths=2)
    nx.draw_networkx_edges(graph, positions, ax=axes, arrows=True, node_size=1000,
                           connectionstyle="arc3,rad=0.08")
    nx.draw_networkx_labels(graph, positions, ax=axes, font_size=7,
                            labels={n: workflow.states[n].label.en for n in graph.nodes})
    nx.draw_networkx_edge_labels(
        graph, positions, ax=axes, font_size=5,
        edge_labels={edge: ", ".join(graph.edges[edge]["transitions"]) for edge in graph.edges})
    buffer = io.BytesIO()
    figure.savefig(buffer, format=fmt, bbox_inches="tight")
    return buffer.getvalue()
