"""pydantic v2 validates through pydantic-core, its Rust extension."""

import pydantic
import pydantic_core
from pydantic import BaseModel, ValidationError


class User(BaseModel):
    id: int
    name: str
    tags: list[str] = []


user = User.model_validate_json('{"id": "42", "name": "corpus", "tags": ["rust"]}')
try:
    User(id="x", name=3)
except ValidationError as e:
    errors = e.error_count()
print(f"pydantic {pydantic.VERSION} core {pydantic_core.__version__}: {user.model_dump_json()}, rejected with {errors} errors")
