"""Tests of the leads app: normalisation, capture and matching, intake, signals."""
