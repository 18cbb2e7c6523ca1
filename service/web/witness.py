"""Checkpoints taken as a witness for other nodes: POST /v1/audit/checkpoints (role audit)."""

from __future__ import annotations

import socket
from typing import Annotated, Any, Literal

import orjson
from flask import Blueprint, Response, request
from pydantic import BaseModel, ConfigDict, Field, RootModel, ValidationError

from service.audit.chain import Chain
from service.audit.checkpoint import WITNESSED, CheckpointLog
from service.audit.files import safe_node
from service.web.body import read_json
from service.web.problems import ApiProblem, from_validation
from service.web.runtime import runtime

bp = Blueprint("witness", __name__)

_HEX = r"^[0-9a-f]{64}$"
_MAX = 2**53  # integers every JSON reader keeps exactly (and that fit the records' 64-bit ints)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class CheckpointHead(_Strict):
    """An audit file's last record as its writer stated it."""

    file: str = Field(pattern=r"^audit-[A-Za-z0-9._-]{1,200}\.jsonl$")
    seq: int = Field(ge=0, le=_MAX)
    hash: str = Field(pattern=_HEX)
    size: int = Field(ge=0, le=_MAX)
    first: int = Field(ge=0, le=_MAX)


class TornIn(_Strict):
    """Bytes of a torn checkpoint line taken back before this checkpoint was appended."""

    offset: int = Field(ge=0, le=_MAX)
    bytes: int = Field(ge=0, le=_MAX)
    sha256: str = Field(pattern=_HEX)


class CheckpointIn(_Strict):
    """One checkpoint record, exactly as the node's checkpoint log holds it (its seal included)."""

    kind: Literal["checkpoint"]
    v: int = Field(ge=0, le=_MAX)
    seq: int = Field(ge=0, le=_MAX)
    ts: str = Field(max_length=40)
    node: str = Field(min_length=1, max_length=255)
    pid: int = Field(ge=0, le=_MAX)
    state: Literal["open", "closed"]
    every: float = Field(gt=0)
    head: CheckpointHead
    prev: str = Field(pattern=_HEX)
    hash: str = Field(pattern=_HEX)
    key: str | None = Field(None, max_length=64)
    follows: str | None = Field(None, max_length=64)
    torn: TornIn | None = None


class CheckpointsIn(RootModel[Annotated[list[CheckpointIn], Field(min_length=1, max_length=64)]]):
    """Checkpoints a node sends to its witness, oldest first."""


class CheckpointsStored(_Strict):
    stored: int


@bp.post("/v1/audit/checkpoints")
def checkpoints() -> Response:
    """As a witness: keep other nodes' checkpoints in this node's own chain (witnessed-*.jsonl in
    its checkpoint directory), so a node cannot cut its log and its own checkpoints unseen."""
    if not request.is_json:
        raise ApiProblem(415, "Unsupported Media Type", "send the checkpoints as application/json")
    raw: Any = read_json(request.get_data(cache=False))
    try:
        CheckpointsIn.model_validate(raw)  # also refuses lone surrogates, which no record can hold
    except ValidationError as error:
        raise from_validation(error) from None
    settings = runtime().settings
    chain = Chain(settings.audit_key_bytes)
    for index, checkpoint in enumerate(raw):
        # Keyed with this node's key: the seal must hold (keyed otherwise: kept for verify to judge).
        if (
            chain.key is not None
            and checkpoint.get("key") in chain.fingerprints
            and not chain.check(checkpoint)
        ):
            raise ApiProblem(
                422, "Invalid checkpoint", f"/{index}: its seal does not hold with this node's key"
            )
    log = CheckpointLog(
        settings.audit_checkpoint_path,
        chain,
        node=safe_node(settings.audit_node or socket.gethostname()),
        prefix=WITNESSED,
    )
    peer = request.remote_addr
    now = runtime().clock()
    for checkpoint in raw:
        log.append("witnessed", {"checkpoint": checkpoint, "peer": peer}, now)
    return Response(orjson.dumps({"stored": len(raw)}), status=202, mimetype="application/json")
