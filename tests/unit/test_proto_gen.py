"""python -m proto_gen: a directory of .proto files (or the installed opencue-proto) to one set.

The sets it writes are loaded here the way the gateway loads PROTO_DESCRIPTOR_SET;
its failures are one line each, naming the file and line protoc names, and exit 1
without leaving a set behind.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from google.protobuf import descriptor_pb2

from opencue_gateway.catalog import MethodCatalog
from opencue_gateway.descriptor_sets import installed_set
from proto_gen.__main__ import main
from tests.studio_protos import FILES, GET_BUDGET, write_protos
from tests.unit.test_descriptor_sets import imports_first

# A protoc diagnostic as proto_gen passes it on: file:line:column: message.
DIAGNOSTIC = re.compile(r"^proto_gen: \S+\.proto:\d+:\d+: \S")

BROKEN = {
    "broken.proto": """\
syntax = "proto3";
package broken;
message A { Missing x = 1; int32 y = 1; }
""",
}
SYNTAX_ERROR = {"syntax.proto": 'syntax = "proto3";\npackage syntax;\nmessage B { int32 z = 1 }\n'}


def test_a_directory_becomes_one_set_with_its_imports(tmp_path, capsys):
    """Every .proto under the directory, and the well-known type it imports, imports first."""
    output = tmp_path / "studio.pb"
    assert main([str(write_protos(tmp_path / "protos")), "-o", str(output)]) == 0
    files = descriptor_pb2.FileDescriptorSet.FromString(output.read_bytes())
    assert sorted(f.name for f in files.file) == FILES
    assert imports_first(files)
    assert not any(f.HasField("source_code_info") for f in files.file)
    catalog = MethodCatalog.from_set_file(str(output))
    assert GET_BUDGET in catalog.methods
    out = capsys.readouterr().out
    assert out == f"proto_gen: wrote {output}: 3 files, 2 services and 4 methods to serve\n"
    assert not (tmp_path / "studio.pb.partial").exists()


def test_protoc_errors_are_one_line_each_naming_file_and_line(tmp_path, capsys):
    """Each error protoc finds is one line with its file:line:column; exit 1, nothing written."""
    output = tmp_path / "broken.pb"
    assert main([str(write_protos(tmp_path / "protos", BROKEN)), "-o", str(output)]) == 1
    lines = capsys.readouterr().err.splitlines()
    where = f"proto_gen: {tmp_path}/protos/broken.proto"
    assert lines == [f'{where}:3:13: "Missing" is not defined.',
                     f'{where}:3:38: Field number 1 has already been used in "broken.A" by '
                     'field "x". Next available field number is 2.']
    assert not output.exists()


def test_as_a_module_errors_exit_1_on_stderr(tmp_path):
    """`python -m proto_gen` itself: protoc's lines on stderr, nothing on stdout, exit 1."""
    protos = write_protos(tmp_path / "protos", SYNTAX_ERROR)
    result = subprocess.run([sys.executable, "-m", "proto_gen", str(protos), "-o",
                             str(tmp_path / "x.pb")], capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == f'proto_gen: {protos}/syntax.proto:3:25: Expected ";".\n'


def test_warnings_are_shown_once_and_the_set_is_written(tmp_path, capsys):
    """An unused import is protoc's warning, printed once; the build still succeeds."""
    protos = write_protos(tmp_path / "protos")
    budget = protos / "studio" / "budget.proto"
    budget.write_text(budget.read_text().replace(
        'import "show.proto";', 'import "show.proto";\nimport "google/protobuf/empty.proto";'))
    assert main([str(protos), "-o", str(tmp_path / "studio.pb")]) == 0
    [warning] = capsys.readouterr().err.splitlines()
    assert DIAGNOSTIC.match(warning) and "warning: Import google/protobuf/empty.proto" in warning
    assert (tmp_path / "studio.pb").exists()


@pytest.mark.parametrize(("make", "said"), [
    (lambda d: d / "absent", "not a directory"),
    (lambda d: d, "no .proto file under it"),
])
def test_a_directory_without_protos_is_one_line(tmp_path, capsys, make, said):
    """A missing directory, or one holding no .proto, is named in one line; exit 1."""
    directory = make(tmp_path)
    assert main([str(directory), "-o", str(tmp_path / "x.pb")]) == 1
    assert capsys.readouterr().err == f"proto_gen: {directory}: {said}\n"


def test_a_set_with_nothing_to_serve_is_refused(tmp_path, capsys):
    """Messages without a service (or only RQD's) would not start a gateway: exit 1, no set."""
    protos = write_protos(tmp_path / "protos", {
        "types.proto": 'syntax = "proto3";\npackage types;\nmessage Only { int32 x = 1; }\n',
        "rqd.proto": 'syntax = "proto3";\npackage rqd;\nmessage R {}\n'
                     "service RqdInterface { rpc Ping(R) returns (R); }\n",
    })
    assert main([str(protos), "-o", str(tmp_path / "x.pb")]) == 1
    assert capsys.readouterr().err == (f"proto_gen: no Cuebot-facing service in {protos} "
                                       "(no unary method outside RQD's services)\n")
    assert not (tmp_path / "x.pb").exists()


def test_installed_writes_the_set_the_gateway_serves_by_default(tmp_path, capsys, catalog):
    """--installed writes opencue-proto's set; it serves the default catalog's methods."""
    output = tmp_path / "opencue.pb"
    assert main(["--installed", "-o", str(output)]) == 0
    assert output.read_bytes() == installed_set().SerializeToString()
    assert set(MethodCatalog.from_set_file(str(output)).methods) == set(catalog.methods)
    assert capsys.readouterr().out.endswith(
        f"services and {len(catalog)} methods to serve\n")


@pytest.mark.parametrize("arguments", [["-o", "x.pb"], ["--installed", "protos", "-o", "x.pb"]])
def test_either_a_directory_or_installed(arguments, capsys):
    """Neither or both is a usage error (exit 2) that says which to give."""
    with pytest.raises(SystemExit) as exited:
        main(arguments)
    assert exited.value.code == 2
    assert "give either PROTO_DIR or --installed" in capsys.readouterr().err


def test_an_unwritable_output_is_one_line(tmp_path, capsys):
    """A set that cannot be written says where and why in one line; exit 1."""
    output = tmp_path / "missing-dir" / "x.pb"
    assert main(["--installed", "-o", str(output)]) == 1
    assert capsys.readouterr().err == (
        f"proto_gen: cannot write {output}: No such file or directory\n")
