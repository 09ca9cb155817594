import sendoff


def test_version_is_exposed():
    assert sendoff.__version__ == "0.1.0"


def test_invalid_request_names_the_field():
    err = sendoff.InvalidRequest("uri", "no host")
    assert isinstance(err, ValueError)
    assert str(err) == "uri: no host"
