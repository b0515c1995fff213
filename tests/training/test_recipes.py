"""Recipes: a named set of training settings, overlaid by what the user sets, with a time estimate made
from the rates the recipe was measured at."""

import dataclasses

import pytest

from dfscan.training.fit import TrainConfig
from dfscan.training.recipes import RECIPES, recipe_settings


def test_every_recipe_names_only_train_config_fields_and_resolves():
    fields = {field.name for field in dataclasses.fields(TrainConfig)}
    for recipe in RECIPES.values():
        assert set(recipe.settings) <= fields
        config = TrainConfig(data="d", out="o", **recipe_settings(recipe.name, given={})).resolved()
        config.clip_spec()  # the clip settings are valid together
        assert config.recipe == recipe.name


def test_what_the_user_sets_wins_over_the_recipe():
    settings = recipe_settings("ff-residual", given={"epochs": 3, "seed": 7})
    assert settings["epochs"] == 3 and settings["seed"] == 7
    assert settings["arch"] == "residual-cnn" and settings["spatial_crop"] == 48 and settings["crop"] == "face"
    assert settings["recipe"] == "ff-residual"
    with pytest.raises(ValueError, match="unknown recipe 'fast'; expected one of ff-residual"):
        recipe_settings("fast", given={})


def test_the_estimate_is_reading_once_plus_every_epoch_over_the_training_videos():
    recipe = dataclasses.replace(RECIPES["ff-residual"], read_seconds_per_video=2.0,
                                 fit_seconds_per_video_epoch=0.5, settings={"epochs": 10})
    assert recipe.estimate_seconds(100, 20, 30) == 150 * 2.0 + 10 * 100 * 0.5
    assert recipe.estimate_line(100, 20, 30) == (
        "recipe ff-residual: 100 training, 20 validation and 30 test videos; about 13 min at the rates measured "
        "on 2 CPU cores (a GPU is faster)")
    assert "about 30 s" in recipe.estimate_line(4, 1, 0)
    assert "about 2.0 h" in dataclasses.replace(recipe, fit_seconds_per_video_epoch=7.0).estimate_line(100, 20, 30)
    assert recipe.estimate_seconds(100, 20, 30, twins=40) == 150 * 2.0 + 10 * 140 * 0.5  # twins train too
    assert recipe.estimate_line(100, 20, 30, twins=40).startswith(
        "recipe ff-residual: 100 training (and up to 40 self-blended twins), 20 validation and 30 test videos; "
        "about 17 min")


def test_a_spatial_crop_is_refused_before_training_as_the_training_view_refuses_it():
    with pytest.raises(ValueError, match="fully convolutional architecture .residual-cnn., not cnn-lstm"):
        TrainConfig(data="d", out="o", spatial_crop=48).resolved()
    with pytest.raises(ValueError, match="residual-cnn takes spatial crops of 34 to 95 pixels, not 96"):
        TrainConfig(data="d", out="o", arch="residual-cnn", spatial_crop=96).resolved()
    assert TrainConfig(data="d", out="o", arch="residual-cnn", spatial_crop=95).resolved().size == 96
