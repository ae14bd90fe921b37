"""Which Google operations each deployed function's code can reach, read from the source.

The Firestore emulator and the Storage and Pub/Sub stand-ins check no IAM, so a
function whose identity lacks a permission passes every local test and fails in
production (issue 15: ``sweep_tasks`` deleting upload objects without a bucket role).
This module finds, without running anything, every Google call a function can make:

- a call graph over ``main.py``, ``functions/`` and ``shared/`` (a def reaches every
  def of ours it names: called, passed as a callback or used as a decorator; nested
  defs belong to the def around them; a class stands for all its methods);
- in each def, the calls on the clients of ``shared/clients.py``: Cloud Storage
  methods on a bucket or blob, Firestore reads and writes in the modules that use
  ``clients.firestore``, Pub/Sub publishes (with the topic the caller names through
  the settings), Firebase Auth user lookups, and Gemini.

It over-approximates on purpose (a name counts as reached even on a branch never
taken; in a Firestore module ``x.get()`` counts as a read even on a dict): a missing
permission must never be missed. What it cannot resolve (a publish whose topic no
caller names) is reported, never guessed.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("shared", "functions")

# Operation kinds; infra/iam_permissions.py maps each to IAM permissions.
# Resources: "project", "bucket" (the uploads bucket), "topic:<settings field>".
STORAGE_METHODS = {
    "upload_from_string": "storage.objects.create",
    "upload_from_file": "storage.objects.create",
    "upload_from_filename": "storage.objects.create",
    "create_resumable_upload_session": "storage.objects.create",
    "compose": "storage.objects.create",
    "download_as_bytes": "storage.objects.get",
    "download_as_text": "storage.objects.get",
    "download_to_file": "storage.objects.get",
    "download_to_filename": "storage.objects.get",
    "open": "storage.objects.get",
    "reload": "storage.objects.get",
    "exists": "storage.objects.get",
    "delete": "storage.objects.delete",
    "delete_blob": "storage.objects.delete",
    "delete_blobs": "storage.objects.delete",
    "list_blobs": "storage.objects.list",
    "patch": "storage.objects.update",
    "rewrite": "storage.objects.create",
    "copy_blob": "storage.objects.create",
}
FIRESTORE_METHODS = {
    "get": ("datastore.entities.get",),
    "get_all": ("datastore.entities.get",),
    "stream": ("datastore.entities.list",),
    "on_snapshot": ("datastore.entities.list",),
    "count": ("datastore.entities.list",),
    "create": ("datastore.entities.create",),
    "set": ("datastore.entities.create", "datastore.entities.update"),
    "update": ("datastore.entities.update",),
    "commit": ("datastore.entities.create", "datastore.entities.update"),
    "delete": ("datastore.entities.delete",),
}
AUTH_LOOKUPS = {"verify_id_token", "get_user", "get_user_by_email", "revoke_refresh_tokens"}
AUTH_DELETES = {"delete_user", "delete_users"}
TOPIC_FIELDS = ("tasks_topic", "dead_letter_topic", "webhooks_topic", "webhook_dead_letter_topic")
UNRESOLVED_TOPIC = "topic:?"
GEMINI = ("gemini.generate", "backend")


Op = tuple[str, str]  # (permission or operation kind, resource)


@dataclass
class Module:
    name: str
    tree: ast.Module
    defs: dict[str, ast.AST] = field(default_factory=dict)  # qualname -> node
    classes: dict[str, list[str]] = field(default_factory=dict)  # class -> qualnames
    module_aliases: dict[str, str] = field(default_factory=dict)  # alias -> module
    name_aliases: dict[str, tuple[str, str]] = field(default_factory=dict)  # alias -> def
    # Modules used as objects (ports wired to adapters: ``Submitter(tasks=tasks)``,
    # ``return queue``): an attribute named like one of their defs may call it.
    object_modules: set[str] = field(default_factory=set)
    uses_firestore: bool = False


def load_modules() -> dict[str, Module]:
    paths = [REPO / "main.py"]
    for package in PACKAGES:
        paths += sorted((REPO / package).glob("*.py"))
    modules: dict[str, Module] = {}
    for path in paths:
        relative = path.relative_to(REPO).with_suffix("")
        name = ".".join(relative.parts).removesuffix(".__init__")
        tree = ast.parse(path.read_text(), filename=str(path))
        modules[name] = Module(name=name, tree=tree)
    for module in modules.values():
        index(module, modules)
    return modules


def index(module: Module, modules: dict[str, Module]) -> None:
    for node in module.tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            module.defs[node.name] = node
        elif isinstance(node, ast.ClassDef):
            methods = []
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    qualname = f"{node.name}.{item.name}"
                    module.defs[qualname] = item
                    methods.append(qualname)
            module.classes[node.name] = methods
    for any_node in ast.walk(module.tree):
        if isinstance(any_node, ast.ImportFrom) and any_node.module:
            for alias in any_node.names:
                full = f"{any_node.module}.{alias.name}"
                local = alias.asname or alias.name
                if full in modules:
                    module.module_aliases[local] = full
                elif any_node.module in modules:
                    module.name_aliases[local] = (any_node.module, alias.name)
        elif isinstance(any_node, ast.Import):
            for alias in any_node.names:
                if alias.name in modules and alias.asname:
                    module.module_aliases[alias.asname] = alias.name
        elif (
            isinstance(any_node, ast.Attribute)
            and any_node.attr == "firestore"
            and isinstance(any_node.value, ast.Name)
            and any_node.value.id == "clients"
        ):
            module.uses_firestore = True
    bases = {id(n.value) for n in ast.walk(module.tree) if isinstance(n, ast.Attribute)}
    for name_node in ast.walk(module.tree):
        if (
            isinstance(name_node, ast.Name)
            and isinstance(name_node.ctx, ast.Load)
            and name_node.id in module.module_aliases
            and id(name_node) not in bases
        ):
            module.object_modules.add(module.module_aliases[name_node.id])


def targets(modules: dict[str, Module], module_name: str, name: str) -> list[tuple[str, str]]:
    """The defs that `name` in `module_name` stands for (a class: all its methods)."""
    module = modules.get(module_name)
    if module is None:
        return []
    if name in module.defs:
        return [(module_name, name)]
    return [(module_name, method) for method in module.classes.get(name, [])]


def callees(modules: dict[str, Module], module: Module, node: ast.AST) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    methods = {q.split(".", 1)[1]: q for qs in module.classes.values() for q in qs}
    for child in ast.walk(node):
        if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Load):
            found.update(targets(modules, module.name, child.id))
            if child.id in module.name_aliases:
                found.update(targets(modules, *module.name_aliases[child.id]))
        elif isinstance(child, ast.Attribute):
            if isinstance(child.value, ast.Name) and child.value.id in module.module_aliases:
                found.update(targets(modules, module.module_aliases[child.value.id], child.attr))
            else:
                if child.attr in methods:
                    found.add((module.name, methods[child.attr]))
                for adapter in module.object_modules:
                    if child.attr in modules[adapter].defs:
                        found.add((adapter, child.attr))
    return found


def chain(node: ast.AST) -> Iterator[ast.AST]:
    """The receiver chain of an expression: a.b().c -> c, b(), b, a."""
    while True:
        yield node
        if isinstance(node, ast.Attribute):
            node = node.value
        elif isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, ast.Subscript):
            node = node.value
        else:
            return


def names_storage(node: ast.AST, storage_vars: set[str]) -> bool:
    for link in chain(node):
        if isinstance(link, ast.Attribute) and link.attr in ("blob", "bucket", "get_bucket"):
            return True
        if isinstance(link, ast.Attribute) and link.attr == "storage":
            return True
        if isinstance(link, ast.Name) and link.id in storage_vars:
            return True
    return False


def own_ops(module: Module, node: ast.AST) -> set[Op]:
    ops: set[Op] = set()
    storage_vars: set[str] = set()
    for child in ast.walk(node):
        if isinstance(child, ast.Assign) and names_storage(child.value, storage_vars):
            storage_vars.update(t.id for t in child.targets if isinstance(t, ast.Name))
        # for blob in bucket.list_blobs(...): each blob is a Storage object too.
        if (
            isinstance(child, ast.For)
            and isinstance(child.target, ast.Name)
            and names_storage(child.iter, storage_vars)
        ):
            storage_vars.add(child.target.id)
    for child in ast.walk(node):
        if isinstance(child, ast.Attribute) and isinstance(child.value, ast.Name):
            if child.value.id == "clients" and child.attr == "firestore":
                ops.add(("datastore.entities.get", "project"))
            if child.value.id == "clients" and child.attr == "gemini":
                ops.add(GEMINI)
        if not (isinstance(child, ast.Call) and isinstance(child.func, ast.Attribute)):
            continue
        method = child.func.attr
        receiver = child.func.value
        # (A write that overwrites an object needs delete as well; our object names are
        # new ids, so create alone.)
        if method in STORAGE_METHODS and names_storage(receiver, storage_vars):
            ops.add((STORAGE_METHODS[method], "bucket"))
        elif module.uses_firestore and method in FIRESTORE_METHODS:
            ops.update((p, "project") for p in FIRESTORE_METHODS[method])
        if method == "publish":
            ops.add(("pubsub.topics.publish", UNRESOLVED_TOPIC))
        if method in AUTH_LOOKUPS:
            ops.add(("firebaseauth.users.get", "project"))
        if method in AUTH_DELETES:
            ops.add(("firebaseauth.users.delete", "project"))
    return ops


def topic_fields(node: ast.AST) -> set[str]:
    return {
        child.attr
        for child in ast.walk(node)
        if isinstance(child, ast.Attribute) and child.attr in TOPIC_FIELDS
    }


@dataclass
class Graph:
    modules: dict[str, Module]
    edges: dict[tuple[str, str], set[tuple[str, str]]]
    ops: dict[tuple[str, str], set[Op]]
    topics: dict[tuple[str, str], set[str]]

    def reachable_ops(self, start: tuple[str, str]) -> set[Op]:
        memo: dict[tuple[str, str], set[Op]] = {}
        return self._ops(start, memo, set())

    def _ops(
        self, key: tuple[str, str], memo: dict[tuple[str, str], set[Op]], path: set[tuple[str, str]]
    ) -> set[Op]:
        if key in memo:
            return memo[key]
        if key in path:
            return set()
        path = path | {key}
        found = set(self.ops.get(key, set()))
        for callee in self.edges.get(key, set()):
            found |= self._ops(callee, memo, path)
        # A topic the def names binds the publishes it reaches.
        if UNRESOLVED_TOPIC in {resource for _, resource in found} and self.topics.get(key):
            found = {op for op in found if op[1] != UNRESOLVED_TOPIC} | {
                ("pubsub.topics.publish", f"topic:{name}") for name in self.topics[key]
            }
        memo[key] = found
        return found


def build_graph() -> Graph:
    modules = load_modules()
    edges: dict[tuple[str, str], set[tuple[str, str]]] = {}
    ops: dict[tuple[str, str], set[Op]] = {}
    topics: dict[tuple[str, str], set[str]] = {}
    for module in modules.values():
        for qualname, node in module.defs.items():
            key = (module.name, qualname)
            edges[key] = callees(modules, module, node) - {key}
            ops[key] = own_ops(module, node)
            topics[key] = topic_fields(node)
    return Graph(modules, edges, ops, topics)


def entry_points() -> dict[str, tuple[str, str]]:
    """Function name -> (module, def), as main.py's _ENTRY_POINTS says."""
    tree = ast.parse((REPO / "main.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "_ENTRY_POINTS" for t in node.targets
        ):
            table = ast.literal_eval(node.value)
            return {name: (module, name) for name, module in table.items()}
    raise AssertionError("main.py has no _ENTRY_POINTS")


def function_operations() -> dict[str, set[Op]]:
    """Every deployed function's reachable Google operations."""
    graph = build_graph()
    return {name: graph.reachable_ops(entry) for name, entry in entry_points().items()}
