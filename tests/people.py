"""API calls as one user of the panel under test (a bearer token from POST /api/v1/auth/token)."""

from __future__ import annotations

PASSWORD = "password-123"


class As:
    def __init__(self, client, username: str, password: str = PASSWORD) -> None:
        r = client.post("/api/v1/auth/token", json={"username": username, "password": password})
        assert r.status_code == 201, r.json
        self.client, self.username = client, username
        self.headers = {"Authorization": f"Bearer {r.json['token']}"}

    def _call(self, method: str, url: str, **kw):
        return getattr(self.client, method)(url, headers=self.headers, **kw)

    def get(self, url, **kw):
        return self._call("get", url, **kw)

    def post(self, url, **kw):
        return self._call("post", url, **kw)

    def put(self, url, **kw):
        return self._call("put", url, **kw)

    def patch(self, url, **kw):
        return self._call("patch", url, **kw)

    def delete(self, url, **kw):
        return self._call("delete", url, **kw)
