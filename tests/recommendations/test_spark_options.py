"""The Spark options of ``train_models`` fail early and in one line, without starting Spark."""

import sys

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError


def test_spark_options_need_the_spark_engine(tmp_path):
    with pytest.raises(CommandError, match="--spark-master and --spark-work-dir need --engine spark"):
        call_command(
            "train_models", "--interactions", "x.csv", "--out", str(tmp_path), "--spark-master", "local[2]"
        )


def test_the_spark_engine_without_pyspark_says_what_to_install(tmp_path, monkeypatch):
    (tmp_path / "interactions.csv").write_text("customer_id,item_id\nc1,i1\nc1,i2\nc2,i1\n")
    monkeypatch.setitem(sys.modules, "pyspark", None)  # importing it now raises ImportError

    with pytest.raises(CommandError, match="--engine spark needs Spark: pyspark is not installed"):
        call_command(
            "train_models", "--engine", "spark", "--interactions", str(tmp_path / "interactions.csv"),
            "--out", str(tmp_path / "run"),
        )  # fmt: skip
    assert not (tmp_path / "run").exists()
