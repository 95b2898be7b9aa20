"""Fixtures the whole suite shares, loaded as plugins from the helper modules beside this file: the tiny local
model (``tiny_model_dir``) and the GitHub API test server (``github_server``). Each test folder mirrors a
package (``tests/validators/``, ``tests/trainer/...``, ``tests/bot/``) and keeps its own fixtures in its own
``conftest.py``; no test module imports another."""

pytest_plugins = ["tinymodel", "ghserver"]
