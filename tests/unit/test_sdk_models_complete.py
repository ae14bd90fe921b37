"""The Gemini client is made with every SDK model already built (shared/clients.py).

pydantic defers building google.genai's models to their first use, and first uses from
several threads at once race: CI saw a worker running 50 tasks at once refuse our
response schema ("Extra inputs are not permitted" for every field of ``Schema``). A
fresh process shows the models deferred, and none left so once the client exists.
"""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, pydantic
from google.genai import types
from shared import clients

def deferred():
    return sorted(
        name for name, value in vars(types).items()
        if isinstance(value, type) and issubclass(value, pydantic.BaseModel)
        and not value.__pydantic_complete__
    )

before = deferred()
clients.gemini()
print(json.dumps({"before": before, "after": deferred()}))
"""


def test_the_client_is_made_with_every_sdk_model_built() -> None:
    env = {"GEMINI_BASE_URL": "http://127.0.0.1:9", "GOOGLE_CLOUD_PROJECT": "demo-test"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, env=env
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert "Schema" in seen["before"]  # deferred by pydantic: the race this prevents
    assert seen["after"] == []
