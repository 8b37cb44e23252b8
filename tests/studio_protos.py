"""A studio's own protos, as a test writes them: a fork of show.proto and a service of its own.

``show.proto`` forks OpenCue's (same file name, package and message names) and gives
``show.Show`` a field opencue-proto does not have; ``studio/budget.proto`` adds a
service opencue-proto does not have, importing the fork and a well-known type.
:func:`write_protos` puts them in a directory as a studio's checkout would hold them,
and :func:`build_set` compiles them with proto_gen, as the README tells operators to.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from opencue_gateway.catalog import MethodCatalog
from proto_gen.__main__ import main as proto_gen

SHOW_PROTO = """\
syntax = "proto3";
package show;
option java_package = "com.studio.cue.grpc.show";

message Show {
  string id = 1;
  string name = 2;
  float default_min_cores = 3;
  bool active = 4;
  // The studio's own: the code its accounting knows the show by.
  string studio_code = 100;
}
message ShowSeq { repeated Show shows = 1; }

message ShowFindShowRequest { string name = 1; }
message ShowFindShowResponse { Show show = 1; }
message ShowGetShowsRequest {}
message ShowGetShowsResponse { ShowSeq shows = 1; }

service ShowInterface {
  rpc FindShow(ShowFindShowRequest) returns (ShowFindShowResponse);
  rpc GetShows(ShowGetShowsRequest) returns (ShowGetShowsResponse);
}
"""

BUDGET_PROTO = """\
syntax = "proto3";
package studio;

import "google/protobuf/timestamp.proto";
import "show.proto";

message Budget {
  string show_id = 1;
  int64 core_hours = 2;
  google.protobuf.Timestamp until = 3;
}
message BudgetGetBudgetRequest { show.Show show = 1; }
message BudgetGetBudgetResponse { Budget budget = 1; }
message BudgetSetBudgetRequest { show.Show show = 1; Budget budget = 2; }
message BudgetSetBudgetResponse {}

service BudgetInterface {
  rpc GetBudget(BudgetGetBudgetRequest) returns (BudgetGetBudgetResponse);
  rpc SetBudget(BudgetSetBudgetRequest) returns (BudgetSetBudgetResponse);
}
"""

GET_BUDGET = "/studio.BudgetInterface/GetBudget"
SET_BUDGET = "/studio.BudgetInterface/SetBudget"
FIND_SHOW = "/show.ShowInterface/FindShow"
# What the set holds: the two files and the import protoc adds; 2 services, 4 methods.
FILES = ["google/protobuf/timestamp.proto", "show.proto", "studio/budget.proto"]


@dataclass(frozen=True)
class StudioSet:
    """The compiled set and the catalog a gateway started with it serves."""

    path: Path
    catalog: MethodCatalog


def write_protos(directory: Path, protos: dict[str, str] | None = None) -> Path:
    """Write .proto files (by path under ``directory``; default: the studio's two)."""
    protos = protos if protos is not None else {"show.proto": SHOW_PROTO,
                                                "studio/budget.proto": BUDGET_PROTO}
    for name, text in protos.items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_text(text)
    return directory


def build_set(directory: Path) -> StudioSet:
    """Compile the studio's protos with ``python -m proto_gen``'s main, as an operator would."""
    output = directory / "studio.pb"
    assert proto_gen([str(write_protos(directory / "protos")), "-o", str(output)]) == 0
    return StudioSet(output, MethodCatalog.from_set_file(str(output)))
