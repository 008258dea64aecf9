from __future__ import annotations

from dataclasses import replace

from aishell.lock.foundation import BASE_PACKAGES, DEFAULT_BASE, Foundation


def test_id_is_stable():
    assert Foundation.from_settings().id == Foundation.from_settings().id


def test_tag_is_derived_from_the_id():
    f = Foundation.from_settings()
    assert f.tag == f"aishell-foundation:{f.id[:32]}"
    assert len(f.id) == 64


def test_every_input_changes_the_id():
    f = Foundation.from_settings()
    variants = [
        replace(f, base="debian:bookworm-slim"),
        replace(f, packages=(*f.packages, "postgresql-client")),
        replace(f, template=f.template + b"\n"),
        replace(f, entrypoint=f.entrypoint + b"\n"),
    ]
    ids = {f.id, *(v.id for v in variants)}
    assert len(ids) == 5


def test_package_order_and_duplicates_do_not_matter():
    a = Foundation.from_settings(extra_packages=["b-pkg", "a-pkg", "git"])
    b = Foundation.from_settings(extra_packages=["a-pkg", "b-pkg"])
    assert a.id == b.id


def test_dockerfile_renders_base_and_packages():
    text = Foundation.from_settings(extra_packages=["postgresql-client"]).dockerfile()
    assert f"FROM {DEFAULT_BASE}" in text
    for pkg in (*BASE_PACKAGES, "postgresql-client"):
        assert pkg in text
    assert "ENTRYPOINT" in text


def test_labels_record_the_inputs():
    f = Foundation.from_settings()
    labels = f.labels("sha256:abc")
    assert labels["dev.aishell.lock.foundation-id"] == f.id
    assert labels["dev.aishell.base-id"] == "sha256:abc"
    assert labels["dev.aishell.kind"] == "foundation"
