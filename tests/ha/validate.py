"""Home Assistant's own view of Rabble's device discovery (tests/e2e/homeassistant.rs).

Reads {"devices": {topic: payload}, "states": {topic: payload}} on stdin: each device
payload as Home Assistant's MQTT integration takes it (abbreviations expanded, then
DEVICE_DISCOVERY_SCHEMA), each component merged with the device's shared options and
checked by its platform's DISCOVERY_SCHEMA, and each value_template rendered against
what its state topic holds. Prints {"entities": {unique_id: state}}; exits 1 with the
reason when Home Assistant would refuse anything. Run with PyPI homeassistant==2025.4.4.
"""

import asyncio
import json
import sys
import tempfile

from homeassistant.components.mqtt import binary_sensor, sensor
from homeassistant.components.mqtt.discovery import (
    _merge_common_device_options,
    _replace_all_abbreviations,
)
from homeassistant.components.mqtt.schemas import DEVICE_DISCOVERY_SCHEMA
from homeassistant.core import HomeAssistant
from homeassistant.helpers import frame

PLATFORMS = {"binary_sensor": binary_sensor.DISCOVERY_SCHEMA, "sensor": sensor.DISCOVERY_SCHEMA}


async def main() -> int:
    given = json.load(sys.stdin)
    hass = HomeAssistant(tempfile.mkdtemp())
    frame.async_setup(hass)
    entities = {}
    for topic, text in given["devices"].items():
        payload = json.loads(text)
        _replace_all_abbreviations(payload)
        try:
            device = DEVICE_DISCOVERY_SCHEMA(payload)
        except Exception as e:  # noqa: BLE001
            print(f"{topic}: DEVICE_DISCOVERY_SCHEMA refuses it: {e}")
            return 1
        for cid, comp in device["components"].items():
            comp = dict(comp)
            platform = comp.pop("platform")
            if not comp:
                entities[cid] = "(removed)"
                continue
            _merge_common_device_options(comp, device)
            try:
                valid = PLATFORMS[platform](comp)
            except Exception as e:  # noqa: BLE001
                print(f"{topic}: component {cid} ({platform}) refused: {e}")
                return 1
            state = given["states"].get(valid["state_topic"])
            rendered = None
            if state is not None and "value_template" in valid:
                tpl = valid["value_template"]
                tpl.hass = hass
                rendered = tpl.async_render_with_possible_json_value(state, None)
            entities[valid["unique_id"]] = rendered if rendered is None else str(rendered)
    await hass.async_stop(force=True)
    print(json.dumps({"entities": entities}))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
