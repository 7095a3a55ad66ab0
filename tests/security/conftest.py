import pytest

from tests.support.demo import load_small_demo


@pytest.fixture
def demo(db, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        return load_small_demo()
