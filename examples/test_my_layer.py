"""A student's pytest file: check my TimeRNN against JAX/PyTorch in one line.

    pytest test_my_layer.py

With the layer in student_layer.py this test FAILS (the layer has a mistake) and
pytest prints crosscheck's verdict: which quantities are wrong, by how much, in
which case and time step, and one command that reruns that case alone.
"""

from student_layer import TimeRNN

from crosscheck.testing import assert_layer_matches


def test_my_time_rnn_matches_the_oracles():
    assert_layer_matches(TimeRNN)
