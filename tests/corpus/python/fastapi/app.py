"""A FastAPI app served by uvicorn on $PORT; the response goes through a pydantic model."""

import os

import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel


class Item(BaseModel):
    name: str
    price: float
    tags: list[str] = []


app = FastAPI()


@app.get("/", response_model=Item)
def root() -> Item:
    return Item.model_validate({"name": "corpus", "price": "1.5", "tags": ["fastapi"]})


if __name__ == "__main__":
    uvicorn.run(app, host="0.0.0.0", port=int(os.environ.get("PORT", "8000")))
