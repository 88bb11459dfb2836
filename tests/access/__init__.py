"""Tests of gateway/access/: keys, access settings, the controller, quota stores and windows, usage."""
