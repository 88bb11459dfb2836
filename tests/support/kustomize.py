"""A small kustomize renderer for the manifests in deploy/kubernetes/, so the tests need no binary.

It knows exactly the fields those kustomizations use (resources, files or directories; namespace; labels
on metadata only; images; configMapGenerator from files and secretGenerator from env files, both without
the name hash) and refuses any other field, so it can never skip one silently. Where `kubectl` is
installed, a test checks that `kubectl kustomize` renders the same objects.
"""

from __future__ import annotations

import base64
import copy
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

Manifest = dict[str, Any]
KNOWN_FIELDS = {
    "apiVersion",
    "kind",
    "resources",
    "namespace",
    "labels",
    "images",
    "configMapGenerator",
    "secretGenerator",
}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume", "StorageClass"}


class UnsupportedField(ValueError):
    """The kustomization uses something this renderer does not implement."""


def load_documents(path: Path) -> list[Manifest]:
    yaml = YAML(typ="safe", pure=True)
    return [document for document in yaml.load_all(path.read_text(encoding="utf-8")) if document]


def render(directory: Path) -> list[Manifest]:
    """The objects `kustomize build directory` gives (in resource order, not kustomize's kind order)."""
    [kustomization] = load_documents(directory / "kustomization.yaml")
    unknown = set(kustomization) - KNOWN_FIELDS
    if unknown:
        raise UnsupportedField(f"{directory}: {sorted(unknown)}")
    objects: list[Manifest] = []
    for entry in kustomization.get("resources", []):
        path = directory / entry
        objects += render(path) if path.is_dir() else load_documents(path)
    objects += [config_map(directory, spec) for spec in kustomization.get("configMapGenerator", [])]
    objects += [secret(directory, spec) for spec in kustomization.get("secretGenerator", [])]
    objects = [copy.deepcopy(item) for item in objects]
    for label in kustomization.get("labels", []):
        if set(label) - {"pairs"}:  # includeSelectors / includeTemplates would change more than metadata
            raise UnsupportedField(f"{directory}: labels {sorted(set(label) - {'pairs'})}")
        for item in objects:
            item.setdefault("metadata", {}).setdefault("labels", {}).update(label["pairs"])
    for image in kustomization.get("images", []):
        for item in objects:
            for container in pod_containers(item):
                if container["image"].split(":", 1)[0] == image["name"]:
                    container["image"] = f"{image.get('newName', image['name'])}:{image['newTag']}"
    namespace = kustomization.get("namespace")
    if namespace:
        for item in objects:
            if item["kind"] not in CLUSTER_SCOPED:
                item["metadata"]["namespace"] = namespace
    return objects


def pod_containers(item: Manifest) -> list[Manifest]:
    """The containers of a workload's pod template (none for other kinds)."""
    template = item.get("spec", {}).get("template", {}).get("spec", {})
    return list(template.get("initContainers", [])) + list(template.get("containers", []))


def _generated(spec: dict[str, Any], kind: str) -> Manifest:
    if not spec.get("options", {}).get("disableNameSuffixHash"):
        raise UnsupportedField(f"{kind} {spec['name']}: only generators with disableNameSuffixHash")
    if set(spec) - {"name", "files", "envs", "options"} or set(spec.get("options", {})) - {
        "disableNameSuffixHash"
    }:
        raise UnsupportedField(f"{kind} {spec['name']}: {sorted(spec)} {sorted(spec.get('options', {}))}")
    return {"apiVersion": "v1", "kind": kind, "metadata": {"name": spec["name"]}}


def config_map(directory: Path, spec: dict[str, Any]) -> Manifest:
    generated = _generated(spec, "ConfigMap")
    if spec.get("envs"):
        raise UnsupportedField(f"ConfigMap {spec['name']}: envs")
    files = [directory / name for name in spec.get("files", [])]
    generated["data"] = {path.name: path.read_text(encoding="utf-8") for path in files}
    return generated


def secret(directory: Path, spec: dict[str, Any]) -> Manifest:
    generated = _generated(spec, "Secret")
    if spec.get("files"):
        raise UnsupportedField(f"Secret {spec['name']}: files")
    data: dict[str, str] = {}
    for name in spec.get("envs", []):
        for line in (directory / name).read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                key, _, value = line.partition("=")
                data[key] = base64.b64encode(value.encode()).decode()
    generated["data"] = data
    generated["type"] = "Opaque"
    return generated
