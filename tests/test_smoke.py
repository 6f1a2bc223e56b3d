from tests.support import factory as f


def test_pipeline_reports_ok_credential() -> None:
    leaf = f.make_leaf(["app.example.com"])
    result = f.run(
        f.ingress(),
        f.gateway("gw", [f.server(["app.example.com"], "app-tls")]),
        f.secret("app-tls", leaf=leaf),
    )
    c = f.cred(result, "app-tls")
    assert c.state == "ok"
    assert c.findings == ()
    assert c.certificate is not None and c.certificate.sans == ("app.example.com",)
