"""The server module's request plumbing that runs before any filter."""

import webob

from glance_lite import server


def environ_with(raw, **present):
    environ = webob.Request.blank("/").environ
    environ["headers_raw"] = tuple(raw)
    environ.update(present)
    return environ


def test_underscored_image_meta_headers_are_put_back():
    environ = environ_with(
        [("x-image-meta-disk_format", "raw"), ("X-Image-Meta-Property-distro_name", "deb")]
    )
    server.recover_underscore_headers(environ)
    req = webob.Request(environ)
    assert req.headers["X-Image-Meta-Disk-Format"] == "raw"
    assert req.headers["X-Image-Meta-Property-Distro-Name"] == "deb"


def test_glance_headers_are_put_back_and_others_stay_dropped():
    environ = environ_with([("x-glance-registry-purge_props", "false"), ("x_roles", "admin")])
    server.recover_underscore_headers(environ)
    assert environ["HTTP_X_GLANCE_REGISTRY_PURGE_PROPS"] == "false"
    assert "HTTP_X_ROLES" not in environ


def test_both_spellings_with_one_value_are_accepted():
    environ = environ_with(
        [("x-image-meta-disk_format", "raw")], HTTP_X_IMAGE_META_DISK_FORMAT="raw"
    )
    server.recover_underscore_headers(environ)
    assert server.HEADER_CONFLICT not in environ


def test_both_spellings_with_different_values_are_a_400():
    environ = environ_with(
        [("x-image-meta-disk_format", "raw")], HTTP_X_IMAGE_META_DISK_FORMAT="qcow2"
    )
    server.recover_underscore_headers(environ)
    app = server.serving(lambda e, s: [])
    resp = webob.Request(environ).get_response(app)
    assert resp.status_int == 400
    assert "x-image-meta-disk-format" in resp.text
