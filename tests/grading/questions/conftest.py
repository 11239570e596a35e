import pytest
from fixtures.question_answers import solved_namespace


@pytest.fixture(scope="session")
def solved() -> dict[str, dict]:
    """The namespace of each solution notebook of exercises 02-05 after running it top to bottom."""
    return {assignment: solved_namespace(assignment) for assignment in ("02", "03", "04", "05")}
