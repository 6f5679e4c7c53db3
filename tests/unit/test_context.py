import webob

from glance_lite import context


def echo(environ, start_response):
    ctx = environ[context.ENV_KEY]
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [
        f"{ctx.user_id}|{ctx.tenant_id}|{','.join(ctx.roles)}|{ctx.is_admin}|"
        f"{ctx.read_only}|{ctx.owner}".encode()
    ]


def trusted(**kw):
    opts = {
        "owner_is_tenant": True,
        "admin_role": "admin",
        "allow_anonymous_access": False,
        "max_request_id_length": 64,
    }
    opts.update(kw)
    return context.TrustedAuthContext(echo, **opts)


def get(app, headers=None):
    return webob.Request.blank("/", headers=headers or {}).get_response(app)


def test_unauthenticated_context_is_an_admin_without_owner():
    resp = get(context.UnauthenticatedContext(echo, owner_is_tenant=True))
    assert resp.text == "None|None||True|False|None"
    assert resp.headers["x-openstack-request-id"].startswith("req-")


def test_unauthenticated_context_ignores_the_callers_request_id():
    resp = get(
        context.UnauthenticatedContext(echo, owner_is_tenant=True),
        {"X-Openstack-Request-ID": "abc"},
    )
    assert resp.headers["x-openstack-request-id"] != "req-abc"


def test_trusted_auth_reads_identity_headers_and_lowercases_roles():
    resp = get(
        trusted(),
        {
            "X-Identity-Status": "Confirmed",
            "X-User-Id": "u1",
            "X-Tenant-Id": "t1",
            "X-Roles": "Member, ADMIN",
            "X-Openstack-Request-ID": "abc",
        },
    )
    assert resp.text == "u1|t1|member,admin|True|False|t1"
    assert resp.headers["x-openstack-request-id"] == "req-abc"


def test_trusted_auth_takes_project_id_and_owner_can_be_the_user():
    resp = get(
        trusted(owner_is_tenant=False),
        {"X-Identity-Status": "Confirmed", "X-User-Id": "u1", "X-Project-Id": "p1"},
    )
    assert resp.text == "u1|p1||False|False|u1"


def test_trusted_auth_without_confirmed_identity_is_401():
    assert get(trusted()).status_int == 401
    assert get(trusted(), {"X-Identity-Status": "Invalid"}).status_int == 401


def test_anonymous_access_gives_a_read_only_context():
    resp = get(trusted(allow_anonymous_access=True))
    assert resp.text == "None|None||False|True|None"


def test_bad_service_catalog_is_400():
    resp = get(trusted(), {"X-Identity-Status": "Confirmed", "X-Service-Catalog": "{"})
    assert resp.status_int == 400
    assert "Invalid service catalog json." in resp.text


def test_over_long_request_id_is_431():
    resp = get(trusted(), {"X-Identity-Status": "Confirmed", "X-Openstack-Request-ID": "x" * 65})
    assert resp.status_int == 431
    assert "X-Openstack-Request-ID" in resp.text


def test_an_is_admin_check_can_make_a_caller_admin():
    app = trusted(is_admin_check=lambda ctx: "operator" in ctx.roles)
    headers = {"X-Identity-Status": "Confirmed", "X-Tenant-Id": "t", "X-Roles": "operator"}
    assert get(app, headers).text.split("|")[3] == "True"
    headers["X-Roles"] = "member"
    assert get(app, headers).text.split("|")[3] == "False"


def test_a_request_id_with_a_control_character_is_a_400_naming_the_header():
    for given in ("abc\r\n Set-Cookie: pwn=1", "abc\nx", "a\x00b", "a\x7fb"):
        req = webob.Request.blank("/")
        req.environ["HTTP_X_OPENSTACK_REQUEST_ID"] = given  # as a server passes it on
        req.environ["HTTP_X_IDENTITY_STATUS"] = "Confirmed"
        resp = req.get_response(trusted())
        assert resp.status_int == 400, given
        assert "X-Openstack-Request-ID) may not contain control characters" in resp.text
        assert all("\n" not in value for _, value in resp.headerlist)


def test_no_response_header_value_carries_a_control_character():
    def folded(environ, start_response):
        start_response("201 Created", [("Location", "http://x\r\n Set-Cookie: a=b\x00/v1")])
        return [b""]

    resp = get(context.UnauthenticatedContext(folded, owner_is_tenant=True))
    assert resp.headers["Location"] == "http://x   Set-Cookie: a=b /v1"
    assert "Set-Cookie" not in resp.headers
