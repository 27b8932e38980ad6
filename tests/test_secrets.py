import copy
import json

import pytest

from harness.analysis.secrets import MASK, is_secret, mask_args, mask_record, mask_text


@pytest.mark.parametrize("name", ["NPM_TOKEN", "npm_token", "GithubToken", "DB_PASSWORD",
                                  "password", "MY_SECRET_THING", "client-secret", "API_KEY",
                                  "stripe_api_key", "OPENAI-API-KEY", "APIKEY", "SMTP_PASSWD"])
def test_secret_names(name):
    assert is_secret(name)


@pytest.mark.parametrize("name", ["NODE_VERSION", "HTTP_PROXY", "BUILD_DATE", "CACHE_KEY",
                                  "KEYBOARD", "PASS", "TOKE"])
def test_ordinary_names(name):
    assert not is_secret(name)


def test_extra_names_are_case_insensitive_and_exact():
    assert is_secret("registry_auth", ["REGISTRY_AUTH"])
    assert is_secret("REGISTRY_AUTH", ("registry_auth",))
    assert not is_secret("REGISTRY_AUTH_URL", ["REGISTRY_AUTH"])
    assert not is_secret("REGISTRY_AUTH")


def test_mask_args_masks_by_name_whatever_the_length():
    args = {"NPM_TOKEN": "abc", "NODE_VERSION": "20", "DEPLOY_KEY": "k-123456"}
    assert mask_args(args, ["deploy_key"]) == {
        "NPM_TOKEN": MASK, "NODE_VERSION": "20", "DEPLOY_KEY": MASK}
    assert args["NPM_TOKEN"] == "abc"  # the input is untouched
    assert mask_args({}, ()) == {}


def test_mask_text_every_occurrence_longest_first():
    text = "npm ERR! 403 token s3cr3t-value-XYZ rejected (s3cr3t-value-XYZ); prefix s3cr3t"
    assert mask_text(text, ["s3cr3t-value-XYZ", "s3cr3t"]) == (
        "npm ERR! 403 token *** rejected (***); prefix ***")
    assert mask_text("nothing here", ["s3cr3t"]) == "nothing here"


def test_short_and_empty_values_are_not_masked_in_text():
    # Masking "1" or "" would shred every line and hide nothing.
    assert mask_text("Step 1/3 : RUN x", ["1", "", "ab", "RUN"]) == "Step 1/3 : RUN x"
    assert mask_text("pass=abcd", ["abcd"]) == "pass=***"


def test_mask_record_walks_everything_and_copies():
    secret = "ghp_0123456789abcdef"
    record = {
        "run_id": "20260101T000000Z",
        "settings": {"secret_args": ["NPM_TOKEN"], "repeat": 3, "ratio": 1.5, "on": True,
                     "none": None},
        "bases": {f"registry.local/{secret}/node:20": {"status": "present"}},
        "variants": [{
            "name": "a",
            "build_args": {"NPM_TOKEN": MASK, "NOTE": f"uses {secret}"},
            "error": f"build failed: npm ERR! 401 for token {secret}",
            "build": {"log_tail": ["Step 2/4 : RUN echo ok", f"+ curl -H 'Authorization: {secret}'"],
                      "samples_seconds": [1.0, 2.0]},
            "dockerfile_text": f"FROM node:20\nARG NPM_TOKEN={secret}\n",
            "pair": ("x", secret),
        }],
    }
    before = copy.deepcopy(record)
    masked = mask_record(record, [secret])
    assert record == before  # not modified in place
    assert secret not in json.dumps(masked, default=list)
    v = masked["variants"][0]
    assert v["error"] == "build failed: npm ERR! 401 for token ***"
    assert v["build"]["log_tail"][1] == "+ curl -H 'Authorization: ***'"
    assert v["build"]["log_tail"][0] == "Step 2/4 : RUN echo ok"
    assert v["build_args"] == {"NPM_TOKEN": MASK, "NOTE": "uses ***"}
    assert v["dockerfile_text"] == "FROM node:20\nARG NPM_TOKEN=***\n"
    assert v["pair"] == ("x", MASK)
    assert list(masked["bases"]) == ["registry.local/***/node:20"]
    assert masked["settings"] == before["settings"]
    assert v["build"]["samples_seconds"] == [1.0, 2.0]


def test_mask_record_without_values_is_an_equal_copy():
    record = {"variants": [{"error": "x"}]}
    out = mask_record(record, [])
    assert out == record and out is not record
