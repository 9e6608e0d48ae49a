"""Fakes of outside services, as real servers started by the tests."""
