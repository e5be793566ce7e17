"""Port choice of the embedded SeaweedFS (runctl.local_s3)."""

from __future__ import annotations

from runctl.local_s3 import clashes, free_ports


def test_a_port_that_is_another_ones_grpc_twin_clashes() -> None:
    # weed mini refused filer port 47143 with master on 37143 (gRPC = port + 10000).
    assert clashes(47143, [37143])
    assert clashes(37143, [47143])
    assert clashes(40000, [40000])
    assert clashes(40000, [30000, 45000])
    assert not clashes(40000, [40001, 30001, 50001])


def test_free_ports_are_pairwise_clear_of_twins() -> None:
    for _ in range(20):
        ports = free_ports(5)
        assert len(set(ports)) == 5
        for i, port in enumerate(ports):
            assert not clashes(port, ports[:i] + ports[i + 1 :])
