import os

import pytest

from tad.errors import TadInputError
from tad.output_guard import refuse_output_over_inputs, same_file


def test_same_path_through_dot_and_link(tmp_path):
    f = tmp_path / "a.json"
    f.write_text("{}")
    link = tmp_path / "link.json"
    os.symlink(f, link)
    assert same_file(f, tmp_path / "." / "a.json")
    assert same_file(link, f)
    assert not same_file(f, tmp_path / "b.json")


def test_refuses_output_that_is_an_input(tmp_path):
    f = tmp_path / "preds.json"
    f.write_text("{}")
    with pytest.raises(TadInputError, match=r"--metrics-out is one of the inputs \(PREDICTIONS\)"):
        refuse_output_over_inputs({"--metrics-out": str(tmp_path / "." / "preds.json")},
                                  {"PREDICTIONS": str(f), "--annotations": None})
    with pytest.raises(TadInputError, match="-o is one of the inputs"):
        refuse_output_over_inputs({"-o": f}, {"VIDEOS": [tmp_path / "x.mp4", f]})


def test_distinct_paths_pass(tmp_path):
    refuse_output_over_inputs({"-o": tmp_path / "out.json", "--plot": None},
                              {"PREDICTIONS": tmp_path / "in.json"})
