"""Regenerate the Python code of the contract (`make proto`).

The contract imports `buf/validate/validate.proto`. It is not copied into this
repository: the installed `protovalidate` package embeds its serialized
FileDescriptorProto, which is handed to protoc as a descriptor set together
with the well-known types it imports.
"""

from __future__ import annotations

import ast
import shutil
import sys
from pathlib import Path

import protovalidate
from google.protobuf import descriptor_pb2, duration_pb2, field_mask_pb2, timestamp_pb2
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
OUT = ROOT / "gen"
DESCRIPTOR_SET = ROOT / "build" / "validate.binpb"
VALIDATE_PROTO = "buf/validate/validate.proto"
BIN = Path(sys.executable).parent


def validate_file_descriptor() -> bytes:
    """The serialized FileDescriptorProto of buf/validate/validate.proto."""
    source = Path(protovalidate.__file__).parent / "_gen/buf/validate/validate_pb.py"
    for node in ast.walk(ast.parse(source.read_text())):
        value = node.value if isinstance(node, ast.Constant) else None
        if isinstance(value, bytes) and value.startswith(b"\n\x1b" + VALIDATE_PROTO.encode()):
            return value
    raise SystemExit(f"no descriptor of {VALIDATE_PROTO} found in {source}")


def write_descriptor_set() -> None:
    files = descriptor_pb2.FileDescriptorSet()
    for module in (descriptor_pb2, duration_pb2, field_mask_pb2, timestamp_pb2):
        files.file.add().ParseFromString(module.DESCRIPTOR.serialized_pb)
    files.file.add().ParseFromString(validate_file_descriptor())
    DESCRIPTOR_SET.parent.mkdir(parents=True, exist_ok=True)
    DESCRIPTOR_SET.write_bytes(files.SerializeToString())


def main() -> int:
    write_descriptor_set()
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir()
    contract = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
    args = [
        "protoc",
        f"--proto_path={PROTOS}",
        f"--descriptor_set_in={DESCRIPTOR_SET}",
        f"--python_out={OUT}",
        f"--grpc_python_out={OUT}",
        f"--plugin=protoc-gen-mypy={BIN / 'protoc-gen-mypy'}",
        f"--mypy_out={OUT}",
        f"--plugin=protoc-gen-mypy_grpc={BIN / 'protoc-gen-mypy_grpc'}",
        f"--mypy_grpc_out={OUT}",
        VALIDATE_PROTO,
        *contract,
    ]
    if protoc.main(args) != 0:
        return 1
    # protoc writes a gRPC module for every file; keep those with services.
    for module in OUT.rglob("*_pb2_grpc.py"):
        if "Servicer" not in module.read_text():
            module.unlink()
            module.with_suffix(".pyi").unlink(missing_ok=True)
    # Regular packages, so that type checkers and packagers see them.
    for directory in [OUT, *[p for p in OUT.rglob("*") if p.is_dir()]]:
        if directory != OUT:
            (directory / "__init__.py").touch()
    (OUT / "isales" / "py.typed").touch()
    return 0


if __name__ == "__main__":
    sys.exit(main())
