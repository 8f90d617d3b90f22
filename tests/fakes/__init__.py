"""Fakes of the outside world for tests: a scripted OpenAI-compatible server and a scripted chat model."""
