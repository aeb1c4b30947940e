# Generated from roster.schema.json by roster.generate_validator_code(); do not edit.
VERSION = "2.22.3"
from decimal import Decimal
import re
from fastjsonschema import JsonSchemaValueException, JsonSchemaValuesException


REGEX_PATTERNS = {
    '^https?://': re.compile('^https?://'),
    '^@[^:]+:.+$': re.compile('^@[^:]+:.+\\Z'),
    '^(![^:]+(:.+)?|#[^:]+:.+)$': re.compile('^(![^:]+(:.+)?|#[^:]+:.+)\\Z'),
    '^[0-9]{1,20}$': re.compile('^[0-9]{1,20}\\Z'),
    '^[a-z][a-z0-9_-]{0,31}$': re.compile('^[a-z][a-z0-9_-]{0,31}\\Z'),
    '^(?!.*\\.\\.)[A-Za-z0-9][A-Za-z0-9._-]{0,63}$': re.compile('^(?!.*\\.\\.)[A-Za-z0-9][A-Za-z0-9._-]{0,63}\\Z')
}

NoneType = type(None)

def validate(data, custom_formats={}, name_prefix=None):
    if not isinstance(data, (dict)):
        raise JsonSchemaValueException("" + (name_prefix or "data") + " must be object", value=data, name="" + (name_prefix or "data") + "", definition={'$schema': 'http://json-schema.org/draft-07/schema#', 'title': 'Mosaic fleet roster', 'description': 'The roster of a Mosaic agent fleet ($MOSAIC_HOME/fleet/roster.yaml); profiles have the same shape. Secrets never live here: tokens come from the environment (MATRIX_ACCESS_TOKEN, DISCORD_BOT_TOKEN).', 'type': 'object', 'additionalProperties': False, 'required': ['version', 'transport', 'agents'], 'properties': {'version': {'const': 1}, 'transport': {'enum': ['tmux']}, 'agents': {'type': 'array', 'items': {'type': 'object', 'additionalProperties': False, 'required': ['name', 'runtime'], 'properties': {'name': {'$ref': '#/definitions/agentName'}, 'runtime': {'description': 'The coding agent the unit runs (claude, codex, opencode, pi, ...).', 'type': 'string', 'pattern': '^[a-z][a-z0-9_-]{0,31}$'}, 'class': {'description': "The agent's role; exactly one `orchestrator` per fleet (R5) but in the minimal preset.", 'type': 'string', 'pattern': '^[a-z][a-z0-9_-]{0,31}$', 'default': 'worker'}}}}, 'connector': {'description': 'Orchestrator chat connector. Optional: absent means tmux (back-compat).', 'type': 'object', 'additionalProperties': False, 'required': ['kind'], 'properties': {'kind': {'enum': ['tmux', 'discord', 'matrix']}, 'matrix': {'type': 'object', 'additionalProperties': False, 'required': ['homeserver_url', 'user_id', 'room_id'], 'properties': {'homeserver_url': {'type': 'string', 'pattern': '^https?://'}, 'user_id': {'type': 'string', 'pattern': '^@[^:]+:.+$'}, 'room_id': {'description': 'A room id (room version 12 ids have no server part) or an alias.', 'type': 'string', 'pattern': '^(![^:]+(:.+)?|#[^:]+:.+)$'}, 'operators': {'type': 'array', 'items': {'type': 'string', 'pattern': '^@[^:]+:.+$'}}}}, 'discord': {'type': 'object', 'additionalProperties': False, 'required': ['channel_id'], 'properties': {'channel_id': {'type': 'string', 'pattern': '^[0-9]{1,20}$'}, 'operators': {'type': 'array', 'items': {'type': 'string', 'pattern': '^[0-9]{1,20}$'}}}}}, 'allOf': [{'if': {'properties': {'kind': {'const': 'matrix'}}}, 'then': {'required': ['matrix']}}, {'if': {'properties': {'kind': {'const': 'discord'}}}, 'then': {'required': ['discord']}}]}}, 'definitions': {'agentName': {'description': "A safe systemd unit instance name: letters, digits, '-', '_' and '.', starting with a letter or digit, at most 64 characters, no '..'.", 'type': 'string', 'pattern': '^(?!.*\\.\\.)[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'}, 'agent': {'type': 'object', 'additionalProperties': False, 'required': ['name', 'runtime'], 'properties': {'name': {'description': "A safe systemd unit instance name: letters, digits, '-', '_' and '.', starting with a letter or digit, at most 64 characters, no '..'.", 'type': 'string', 'pattern': '^(?!.*\\.\\.)[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'}, 'runtime': {'description': 'The coding agent the unit runs (claude, codex, opencode, pi, ...).', 'type': 'string', 'pattern': '^[a-z][a-z0-9_-]{0,31}$'}, 'class': {'description': "The agent's role; exactly one `orchestrator` per fleet (R5) but in the minimal preset.", 'type': 'string', 'pattern': '^[a-z][a-z0-9_-]{0,31}$', 'default': 'worker'}}}, 'connector': {'description': 'Orchestrator chat connector. Optional: absent means tmux (back-compat).', 'type': 'object', 'additionalProperties': False, 'required': ['kind'], 'properties': {'kind': {'enum': ['tmux', 'discord', 'matrix']}, 'matrix': {'type': 'object', 'additionalProperties': False, 'required': ['homeserver_url', 'user_id', 'room_id'], 'properties': {'homeserver_url': {'type': 'string', 'pattern': '^https?://'}, 'user_id': {'type': 'string', 'pattern': '^@[^:]+:.+$'}, 'room_id': {'description': 'A room id (room version 12 ids have no server part) or an alias.', 'type': 'string', 'pattern': '^(![^:]+(:.+)?|#[^:]+:.+)$'}, 'operators': {'type': 'array', 'items': {'type': 'string', 'pattern': '^@[^:]+:.+$'}}}}, 'discord': {'type': 'object', 'additionalProperties': False, 'required': ['channel_id'], 'properties': {'channel_id': {'type': 'string', 'pattern': '^[0-9]{1,20}$'}, 'operators': {'type': 'array', 'items': {'type': 'string', 'pattern': '^[0-9]{1,20}$'}}}}}, 'allOf': [{'if': {'properties': {'kind': {'const': 'matrix'}}}, 'then': {'required': ['matrix']}}, {'if': {'properties': {'kind': {'const': 'discord'}}}, 'then': {'required': ['discord']}}]}}}, rule='type')
    data_is_dict = isinstance(data, dict)
    if data_is_dict:
        data__missing_keys = set(['version', 'transport', 'agents']) - data.keys()
        if data__missing_keys:
            raise JsonSchemaValueException("" + (name_prefix or "data") + " must contain " + (str(sorted(data__missing_keys)) + " properties"), value=data, name="" + (name_prefix or "data") + "", definition={'$schema': 'http://json-schema.org/draft-07/schema#', 'title': 'Mosaic fleet roster', 'description': 'The roster of a Mosaic agent fleet ($MOSAIC_HOME/fleet/roster.yaml); profiles have the same shape. Secrets never live here: tokens come from the environment (MATRIX_ACCESS_TOKEN, DISCORD_BOT_TOKEN).', 'type': 'object', 'additionalProperties': False, 'required': ['version', 'transport', 'agents'], 'properties': {'version': {'const': 1}, 'transport': {'enum': ['tmux']}, 'agents': {'type': 'array', 'items': {'type': 'object', 'additionalProperties': False, 'required': ['name', 'runtime'], 'properties': {'name': {'$ref': '#/definitions/agentName'}, 'runtime': {'description': 'The coding agent the unit runs (claude, codex, opencode, pi, ...).', 'type': 'string', 'pattern': '^[a-z][a-z0-9_-]{0,31}$'}, 'class': {'description': "The agent's role; exactly one `orchestrator` per fleet (R5) but in the minimal preset.", 'type': 'string', 'pattern': '^[a-z][a-z0-9_-]{0,31}$', 'default': 'worker'}}}}, 'connector': {'description': 'Orchestrator chat connector. Optional: absent means tmux (back-compat).', 'type': 'object', 'additionalProperties': False, 'required': ['kind'], 'properties': {'kind': {'enum': ['tmux', 'discord', 'matrix']}, 'matrix': {'type': 'object', 'additionalProperties': False, 'required': ['homeserver_url', 'user_id', 'room_id'], 'properties': {'homeserver_url': {'type': 'string', 'pattern': '^https?://'}, 'user_id': {'type': 'string', 'pattern': '^@[^:]+:.+$'}, 'room_id': {'description': 'A room id (room version 12 ids have no server part) or an alias.', 'type': 'string', 'pattern': '^(![^:]+(:.+)?|#[^:]+:.+)$'}, 'operators': {'type': 'array', 'items': {'type': 'string', 'pattern': '^@[^:]+:.+$'}}}}, 'discord': {'type': 'object', 'additionalProperties': False, 'required': ['channel_id'], 'properties': {'channel_id': {'type': 'string', 'pattern': '^[0-9]{1,20}$'}, 'operators': {'type': 'array', 'items': {'type': 'string', 'pattern': '^[0-9]{1,20}$'}}}}}, 'allOf': [{'if': {'properties': {'kind': {'const': 'matrix'}}}, 'then': {'required': ['matrix']}}, {'if': {'properties': {'kind': {'const': 'discord'}}}, 'then': {'required': ['discord']}}]}}, 'definitions': {'agentName': {'description': "A safe systemd unit instance name: letters, digits, '-', '_' and '.', starting with a letter or digit, at most 64 characters, no '..'.", 'type': 'string', 'pattern': '^(?!.*\\.\\.)[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'}, 'agent': {'type': 'object', 'additionalProperties': False, 'required': ['name', 'runtime'], 'properties': {'name': {'description': "A safe systemd unit instance name: letters, digits, '-', '_' and '.', starting with a letter or digit, at most 64 characters, no '..'.", 'type': 'string', 'pattern': '^(?!.*\\.\\.)[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'}, 'runtime': {'description': 'The coding agent the unit runs (claude, codex, opencode, pi, ...).', 'type': 'string', 'pattern': '^[a-z][a-z0-9_-]{0,31}$'}, 'class': {'description': "The agent's role; exactly one `orchestrator` per fleet (R5) but in the minimal preset.", 'type': 'string', 'pattern': '^[a-z][a-z0-9_-]{0,31}$', 'default': 'worker'}}}, 'connector': {'description': 'Orchestrator chat connector. Optional: absent means tmux (back-compat).', 'type': 'object', 'additionalProperties': False, 'required': ['kind'], 'properties': {'kind': {'enum': ['tmux', 'discord', 'matrix']}, 'matrix': {'type': 'object', 'additionalProperties': False, 'required': ['homeserver_url', 'user_id', 'room_id'], 'properties': {'homeserver_url': {'type': 'string', 'pattern': '^https?://'}, 'user_id': {'type': 'string', 'pattern': '^@[^:]+:.+$'}, 'room_id': {'description': 'A room id (room version 12 ids have no server part) or an alias.', 'type': 'string', 'pattern': '^(![^:]+(:.+)?|#[^:]+:.+)$'}, 'operators': {'type': 'array', 'items': {'type': 'string', 'pattern': '^@[^:]+:.+$'}}}}, 'discord': {'type': 'object', 'additionalProperties': False, 'required': ['channel_id'], 'properties': {'channel_id': {'type': 'string', 'pattern': '^[0-9]{1,20}$'}, 'operators': {'type': 'array', 'items': {'type': 'string', 'pattern': '^[0-9]{1,20}$'}}}}}, 'allOf': [{'if': {'properties': {'kind': {'const': 'matrix'}}}, 'then': {'required': ['matrix']}}, {'if': {'properties': {'kind': {'const': 'discord'}}}, 'then': {'required': ['discord']}}]}}}, rule='required')
        data_keys = set(data.keys())
        if "version" in data_keys:
            data_keys.remove("version")
            data__version = data["version"]
            if not (isinstance(data__version, (int, float)) and not isinstance(data__version, bool) and data__version == 1):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".version must be same as const definition: 1", value=data__version, name="" + (name_prefix or "data") + ".version", definition={'const': 1}, rule='const')
        if "transport" in data_keys:
            data_keys.remove("transport")
            data__transport = data["transport"]
            if not (isinstance(data__transport, str) and data__transport == 'tmux'):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".transport must be one of ['tmux']", value=data__transport, name="" + (name_prefix or "data") + ".transport", definition={'enum': ['tmux']}, rule='enum')
        if "agents" in data_keys:
            data_keys.remove("agents")
            data__agents = data["agents"]
            if not isinstance(data__agents, (list, tuple)):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".agents must be array", value=data__agents, name="" + (name_prefix or "data") + ".agents", definition={'type': 'array', 'items': {'type': 'object', 'additionalProperties': False, 'required': ['name', 'runtime'], 'properties': {'name': {'$ref': '#/definitions/agentName'}, 'runtime': {'description': 'The coding agent the unit runs (claude, codex, opencode, pi, ...).', 'type': 'string', 'pattern': '^[a-z][a-z0-9_-]{0,31}$'}, 'class': {'description': "The agent's role; exactly one `orchestrator` per fleet (R5) but in the minimal preset.", 'type': 'string', 'pattern': '^[a-z][a-z0-9_-]{0,31}$', 'default': 'worker'}}}}, rule='type')
            data__agents_is_list = isinstance(data__agents, (list, tuple))
            if data__agents_is_list:
                data__agents_len = len(data__agents)
                for data__agents_x, data__agents_item in enumerate(data__agents):
                    validate___definitions_agent(data__agents_item, custom_formats, (name_prefix or "data") + ".agents[{data__agents_x}]".format(**locals()))
        if "connector" in data_keys:
            data_keys.remove("connector")
            data__connector = data["connector"]
            validate___definitions_connector(data__connector, custom_formats, (name_prefix or "data") + ".connector")
        if data_keys:
            raise JsonSchemaValueException("" + (name_prefix or "data") + " must not contain "+str(data_keys)+" properties", value=data, name="" + (name_prefix or "data") + "", definition={'$schema': 'http://json-schema.org/draft-07/schema#', 'title': 'Mosaic fleet roster', 'description': 'The roster of a Mosaic agent fleet ($MOSAIC_HOME/fleet/roster.yaml); profiles have the same shape. Secrets never live here: tokens come from the environment (MATRIX_ACCESS_TOKEN, DISCORD_BOT_TOKEN).', 'type': 'object', 'additionalProperties': False, 'required': ['version', 'transport', 'agents'], 'properties': {'version': {'const': 1}, 'transport': {'enum': ['tmux']}, 'agents': {'type': 'array', 'items': {'type': 'object', 'additionalProperties': False, 'required': ['name', 'runtime'], 'properties': {'name': {'$ref': '#/definitions/agentName'}, 'runtime': {'description': 'The coding agent the unit runs (claude, codex, opencode, pi, ...).', 'type': 'string', 'pattern': '^[a-z][a-z0-9_-]{0,31}$'}, 'class': {'description': "The agent's role; exactly one `orchestrator` per fleet (R5) but in the minimal preset.", 'type': 'string', 'pattern': '^[a-z][a-z0-9_-]{0,31}$', 'default': 'worker'}}}}, 'connector': {'description': 'Orchestrator chat connector. Optional: absent means tmux (back-compat).', 'type': 'object', 'additionalProperties': False, 'required': ['kind'], 'properties': {'kind': {'enum': ['tmux', 'discord', 'matrix']}, 'matrix': {'type': 'object', 'additionalProperties': False, 'required': ['homeserver_url', 'user_id', 'room_id'], 'properties': {'homeserver_url': {'type': 'string', 'pattern': '^https?://'}, 'user_id': {'type': 'string', 'pattern': '^@[^:]+:.+$'}, 'room_id': {'description': 'A room id (room version 12 ids have no server part) or an alias.', 'type': 'string', 'pattern': '^(![^:]+(:.+)?|#[^:]+:.+)$'}, 'operators': {'type': 'array', 'items': {'type': 'string', 'pattern': '^@[^:]+:.+$'}}}}, 'discord': {'type': 'object', 'additionalProperties': False, 'required': ['channel_id'], 'properties': {'channel_id': {'type': 'string', 'pattern': '^[0-9]{1,20}$'}, 'operators': {'type': 'array', 'items': {'type': 'string', 'pattern': '^[0-9]{1,20}$'}}}}}, 'allOf': [{'if': {'properties': {'kind': {'const': 'matrix'}}}, 'then': {'required': ['matrix']}}, {'if': {'properties': {'kind': {'const': 'discord'}}}, 'then': {'required': ['discord']}}]}}, 'definitions': {'agentName': {'description': "A safe systemd unit instance name: letters, digits, '-', '_' and '.', starting with a letter or digit, at most 64 characters, no '..'.", 'type': 'string', 'pattern': '^(?!.*\\.\\.)[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'}, 'agent': {'type': 'object', 'additionalProperties': False, 'required': ['name', 'runtime'], 'properties': {'name': {'description': "A safe systemd unit instance name: letters, digits, '-', '_' and '.', starting with a letter or digit, at most 64 characters, no '..'.", 'type': 'string', 'pattern': '^(?!.*\\.\\.)[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'}, 'runtime': {'description': 'The coding agent the unit runs (claude, codex, opencode, pi, ...).', 'type': 'string', 'pattern': '^[a-z][a-z0-9_-]{0,31}$'}, 'class': {'description': "The agent's role; exactly one `orchestrator` per fleet (R5) but in the minimal preset.", 'type': 'string', 'pattern': '^[a-z][a-z0-9_-]{0,31}$', 'default': 'worker'}}}, 'connector': {'description': 'Orchestrator chat connector. Optional: absent means tmux (back-compat).', 'type': 'object', 'additionalProperties': False, 'required': ['kind'], 'properties': {'kind': {'enum': ['tmux', 'discord', 'matrix']}, 'matrix': {'type': 'object', 'additionalProperties': False, 'required': ['homeserver_url', 'user_id', 'room_id'], 'properties': {'homeserver_url': {'type': 'string', 'pattern': '^https?://'}, 'user_id': {'type': 'string', 'pattern': '^@[^:]+:.+$'}, 'room_id': {'description': 'A room id (room version 12 ids have no server part) or an alias.', 'type': 'string', 'pattern': '^(![^:]+(:.+)?|#[^:]+:.+)$'}, 'operators': {'type': 'array', 'items': {'type': 'string', 'pattern': '^@[^:]+:.+$'}}}}, 'discord': {'type': 'object', 'additionalProperties': False, 'required': ['channel_id'], 'properties': {'channel_id': {'type': 'string', 'pattern': '^[0-9]{1,20}$'}, 'operators': {'type': 'array', 'items': {'type': 'string', 'pattern': '^[0-9]{1,20}$'}}}}}, 'allOf': [{'if': {'properties': {'kind': {'const': 'matrix'}}}, 'then': {'required': ['matrix']}}, {'if': {'properties': {'kind': {'const': 'discord'}}}, 'then': {'required': ['discord']}}]}}}, rule='additionalProperties')
    return data

def validate___definitions_connector(data, custom_formats={}, name_prefix=None):
    if not isinstance(data, (dict)):
        raise JsonSchemaValueException("" + (name_prefix or "data") + " must be object", value=data, name="" + (name_prefix or "data") + "", definition={'description': 'Orchestrator chat connector. Optional: absent means tmux (back-compat).', 'type': 'object', 'additionalProperties': False, 'required': ['kind'], 'properties': {'kind': {'enum': ['tmux', 'discord', 'matrix']}, 'matrix': {'type': 'object', 'additionalProperties': False, 'required': ['homeserver_url', 'user_id', 'room_id'], 'properties': {'homeserver_url': {'type': 'string', 'pattern': '^https?://'}, 'user_id': {'type': 'string', 'pattern': '^@[^:]+:.+$'}, 'room_id': {'description': 'A room id (room version 12 ids have no server part) or an alias.', 'type': 'string', 'pattern': '^(![^:]+(:.+)?|#[^:]+:.+)$'}, 'operators': {'type': 'array', 'items': {'type': 'string', 'pattern': '^@[^:]+:.+$'}}}}, 'discord': {'type': 'object', 'additionalProperties': False, 'required': ['channel_id'], 'properties': {'channel_id': {'type': 'string', 'pattern': '^[0-9]{1,20}$'}, 'operators': {'type': 'array', 'items': {'type': 'string', 'pattern': '^[0-9]{1,20}$'}}}}}, 'allOf': [{'if': {'properties': {'kind': {'const': 'matrix'}}}, 'then': {'required': ['matrix']}}, {'if': {'properties': {'kind': {'const': 'discord'}}}, 'then': {'required': ['discord']}}]}, rule='type')
    try:
        data_is_dict = isinstance(data, dict)
        if data_is_dict:
            data_keys = set(data.keys())
            if "kind" in data_keys:
                data_keys.remove("kind")
                data__kind = data["kind"]
                if not (isinstance(data__kind, str) and data__kind == 'matrix'):
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".kind must be same as const definition: matrix", value=data__kind, name="" + (name_prefix or "data") + ".kind", definition={'const': 'matrix'}, rule='const')
    except (JsonSchemaValueException, JsonSchemaValuesException):
        pass
    else:
        data_is_dict = isinstance(data, dict)
        if data_is_dict:
            data__missing_keys = set(['matrix']) - data.keys()
            if data__missing_keys:
                raise JsonSchemaValueException("" + (name_prefix or "data") + " must contain " + (str(sorted(data__missing_keys)) + " properties"), value=data, name="" + (name_prefix or "data") + "", definition={'required': ['matrix']}, rule='required')
    try:
        data_is_dict = isinstance(data, dict)
        if data_is_dict:
            data_keys = set(data.keys())
            if "kind" in data_keys:
                data_keys.remove("kind")
                data__kind = data["kind"]
                if not (isinstance(data__kind, str) and data__kind == 'discord'):
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".kind must be same as const definition: discord", value=data__kind, name="" + (name_prefix or "data") + ".kind", definition={'const': 'discord'}, rule='const')
    except (JsonSchemaValueException, JsonSchemaValuesException):
        pass
    else:
        data_is_dict = isinstance(data, dict)
        if data_is_dict:
            data__missing_keys = set(['discord']) - data.keys()
            if data__missing_keys:
                raise JsonSchemaValueException("" + (name_prefix or "data") + " must contain " + (str(sorted(data__missing_keys)) + " properties"), value=data, name="" + (name_prefix or "data") + "", definition={'required': ['discord']}, rule='required')
    data_is_dict = isinstance(data, dict)
    if data_is_dict:
        data__missing_keys = set(['kind']) - data.keys()
        if data__missing_keys:
            raise JsonSchemaValueException("" + (name_prefix or "data") + " must contain " + (str(sorted(data__missing_keys)) + " properties"), value=data, name="" + (name_prefix or "data") + "", definition={'description': 'Orchestrator chat connector. Optional: absent means tmux (back-compat).', 'type': 'object', 'additionalProperties': False, 'required': ['kind'], 'properties': {'kind': {'enum': ['tmux', 'discord', 'matrix']}, 'matrix': {'type': 'object', 'additionalProperties': False, 'required': ['homeserver_url', 'user_id', 'room_id'], 'properties': {'homeserver_url': {'type': 'string', 'pattern': '^https?://'}, 'user_id': {'type': 'string', 'pattern': '^@[^:]+:.+$'}, 'room_id': {'description': 'A room id (room version 12 ids have no server part) or an alias.', 'type': 'string', 'pattern': '^(![^:]+(:.+)?|#[^:]+:.+)$'}, 'operators': {'type': 'array', 'items': {'type': 'string', 'pattern': '^@[^:]+:.+$'}}}}, 'discord': {'type': 'object', 'additionalProperties': False, 'required': ['channel_id'], 'properties': {'channel_id': {'type': 'string', 'pattern': '^[0-9]{1,20}$'}, 'operators': {'type': 'array', 'items': {'type': 'string', 'pattern': '^[0-9]{1,20}$'}}}}}, 'allOf': [{'if': {'properties': {'kind': {'const': 'matrix'}}}, 'then': {'required': ['matrix']}}, {'if': {'properties': {'kind': {'const': 'discord'}}}, 'then': {'required': ['discord']}}]}, rule='required')
        data_keys = set(data.keys())
        if "kind" in data_keys:
            data_keys.remove("kind")
            data__kind = data["kind"]
            if not (isinstance(data__kind, str) and data__kind == 'tmux' or isinstance(data__kind, str) and data__kind == 'discord' or isinstance(data__kind, str) and data__kind == 'matrix'):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".kind must be one of ['tmux', 'discord', 'matrix']", value=data__kind, name="" + (name_prefix or "data") + ".kind", definition={'enum': ['tmux', 'discord', 'matrix']}, rule='enum')
        if "matrix" in data_keys:
            data_keys.remove("matrix")
            data__matrix = data["matrix"]
            if not isinstance(data__matrix, (dict)):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".matrix must be object", value=data__matrix, name="" + (name_prefix or "data") + ".matrix", definition={'type': 'object', 'additionalProperties': False, 'required': ['homeserver_url', 'user_id', 'room_id'], 'properties': {'homeserver_url': {'type': 'string', 'pattern': '^https?://'}, 'user_id': {'type': 'string', 'pattern': '^@[^:]+:.+$'}, 'room_id': {'description': 'A room id (room version 12 ids have no server part) or an alias.', 'type': 'string', 'pattern': '^(![^:]+(:.+)?|#[^:]+:.+)$'}, 'operators': {'type': 'array', 'items': {'type': 'string', 'pattern': '^@[^:]+:.+$'}}}}, rule='type')
            data__matrix_is_dict = isinstance(data__matrix, dict)
            if data__matrix_is_dict:
                data__matrix__missing_keys = set(['homeserver_url', 'user_id', 'room_id']) - data__matrix.keys()
                if data__matrix__missing_keys:
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".matrix must contain " + (str(sorted(data__matrix__missing_keys)) + " properties"), value=data__matrix, name="" + (name_prefix or "data") + ".matrix", definition={'type': 'object', 'additionalProperties': False, 'required': ['homeserver_url', 'user_id', 'room_id'], 'properties': {'homeserver_url': {'type': 'string', 'pattern': '^https?://'}, 'user_id': {'type': 'string', 'pattern': '^@[^:]+:.+$'}, 'room_id': {'description': 'A room id (room version 12 ids have no server part) or an alias.', 'type': 'string', 'pattern': '^(![^:]+(:.+)?|#[^:]+:.+)$'}, 'operators': {'type': 'array', 'items': {'type': 'string', 'pattern': '^@[^:]+:.+$'}}}}, rule='required')
                data__matrix_keys = set(data__matrix.keys())
                if "homeserver_url" in data__matrix_keys:
                    data__matrix_keys.remove("homeserver_url")
                    data__matrix__homeserverurl = data__matrix["homeserver_url"]
                    if not isinstance(data__matrix__homeserverurl, (str)):
                        raise JsonSchemaValueException("" + (name_prefix or "data") + ".matrix.homeserver_url must be string", value=data__matrix__homeserverurl, name="" + (name_prefix or "data") + ".matrix.homeserver_url", definition={'type': 'string', 'pattern': '^https?://'}, rule='type')
                    if isinstance(data__matrix__homeserverurl, str):
                        if not REGEX_PATTERNS['^https?://'].search(data__matrix__homeserverurl):
                            raise JsonSchemaValueException("" + (name_prefix or "data") + ".matrix.homeserver_url must match pattern ^https?://", value=data__matrix__homeserverurl, name="" + (name_prefix or "data") + ".matrix.homeserver_url", definition={'type': 'string', 'pattern': '^https?://'}, rule='pattern')
                if "user_id" in data__matrix_keys:
                    data__matrix_keys.remove("user_id")
                    data__matrix__userid = data__matrix["user_id"]
                    if not isinstance(data__matrix__userid, (str)):
                        raise JsonSchemaValueException("" + (name_prefix or "data") + ".matrix.user_id must be string", value=data__matrix__userid, name="" + (name_prefix or "data") + ".matrix.user_id", definition={'type': 'string', 'pattern': '^@[^:]+:.+$'}, rule='type')
                    if isinstance(data__matrix__userid, str):
                        if not REGEX_PATTERNS['^@[^:]+:.+$'].search(data__matrix__userid):
                            raise JsonSchemaValueException("" + (name_prefix or "data") + ".matrix.user_id must match pattern ^@[^:]+:.+$", value=data__matrix__userid, name="" + (name_prefix or "data") + ".matrix.user_id", definition={'type': 'string', 'pattern': '^@[^:]+:.+$'}, rule='pattern')
                if "room_id" in data__matrix_keys:
                    data__matrix_keys.remove("room_id")
                    data__matrix__roomid = data__matrix["room_id"]
                    if not isinstance(data__matrix__roomid, (str)):
                        raise JsonSchemaValueException("" + (name_prefix or "data") + ".matrix.room_id must be string", value=data__matrix__roomid, name="" + (name_prefix or "data") + ".matrix.room_id", definition={'description': 'A room id (room version 12 ids have no server part) or an alias.', 'type': 'string', 'pattern': '^(![^:]+(:.+)?|#[^:]+:.+)$'}, rule='type')
                    if isinstance(data__matrix__roomid, str):
                        if not REGEX_PATTERNS['^(![^:]+(:.+)?|#[^:]+:.+)$'].search(data__matrix__roomid):
                            raise JsonSchemaValueException("" + (name_prefix or "data") + ".matrix.room_id must match pattern ^(![^:]+(:.+)?|#[^:]+:.+)$", value=data__matrix__roomid, name="" + (name_prefix or "data") + ".matrix.room_id", definition={'description': 'A room id (room version 12 ids have no server part) or an alias.', 'type': 'string', 'pattern': '^(![^:]+(:.+)?|#[^:]+:.+)$'}, rule='pattern')
                if "operators" in data__matrix_keys:
                    data__matrix_keys.remove("operators")
                    data__matrix__operators = data__matrix["operators"]
                    if not isinstance(data__matrix__operators, (list, tuple)):
                        raise JsonSchemaValueException("" + (name_prefix or "data") + ".matrix.operators must be array", value=data__matrix__operators, name="" + (name_prefix or "data") + ".matrix.operators", definition={'type': 'array', 'items': {'type': 'string', 'pattern': '^@[^:]+:.+$'}}, rule='type')
                    data__matrix__operators_is_list = isinstance(data__matrix__operators, (list, tuple))
                    if data__matrix__operators_is_list:
                        data__matrix__operators_len = len(data__matrix__operators)
                        for data__matrix__operators_x, data__matrix__operators_item in enumerate(data__matrix__operators):
                            if not isinstance(data__matrix__operators_item, (str)):
                                raise JsonSchemaValueException("" + (name_prefix or "data") + ".matrix.operators[{data__matrix__operators_x}]".format(**locals()) + " must be string", value=data__matrix__operators_item, name="" + (name_prefix or "data") + ".matrix.operators[{data__matrix__operators_x}]".format(**locals()) + "", definition={'type': 'string', 'pattern': '^@[^:]+:.+$'}, rule='type')
                            if isinstance(data__matrix__operators_item, str):
                                if not REGEX_PATTERNS['^@[^:]+:.+$'].search(data__matrix__operators_item):
                                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".matrix.operators[{data__matrix__operators_x}]".format(**locals()) + " must match pattern ^@[^:]+:.+$", value=data__matrix__operators_item, name="" + (name_prefix or "data") + ".matrix.operators[{data__matrix__operators_x}]".format(**locals()) + "", definition={'type': 'string', 'pattern': '^@[^:]+:.+$'}, rule='pattern')
                if data__matrix_keys:
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".matrix must not contain "+str(data__matrix_keys)+" properties", value=data__matrix, name="" + (name_prefix or "data") + ".matrix", definition={'type': 'object', 'additionalProperties': False, 'required': ['homeserver_url', 'user_id', 'room_id'], 'properties': {'homeserver_url': {'type': 'string', 'pattern': '^https?://'}, 'user_id': {'type': 'string', 'pattern': '^@[^:]+:.+$'}, 'room_id': {'description': 'A room id (room version 12 ids have no server part) or an alias.', 'type': 'string', 'pattern': '^(![^:]+(:.+)?|#[^:]+:.+)$'}, 'operators': {'type': 'array', 'items': {'type': 'string', 'pattern': '^@[^:]+:.+$'}}}}, rule='additionalProperties')
        if "discord" in data_keys:
            data_keys.remove("discord")
            data__discord = data["discord"]
            if not isinstance(data__discord, (dict)):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".discord must be object", value=data__discord, name="" + (name_prefix or "data") + ".discord", definition={'type': 'object', 'additionalProperties': False, 'required': ['channel_id'], 'properties': {'channel_id': {'type': 'string', 'pattern': '^[0-9]{1,20}$'}, 'operators': {'type': 'array', 'items': {'type': 'string', 'pattern': '^[0-9]{1,20}$'}}}}, rule='type')
            data__discord_is_dict = isinstance(data__discord, dict)
            if data__discord_is_dict:
                data__discord__missing_keys = set(['channel_id']) - data__discord.keys()
                if data__discord__missing_keys:
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".discord must contain " + (str(sorted(data__discord__missing_keys)) + " properties"), value=data__discord, name="" + (name_prefix or "data") + ".discord", definition={'type': 'object', 'additionalProperties': False, 'required': ['channel_id'], 'properties': {'channel_id': {'type': 'string', 'pattern': '^[0-9]{1,20}$'}, 'operators': {'type': 'array', 'items': {'type': 'string', 'pattern': '^[0-9]{1,20}$'}}}}, rule='required')
                data__discord_keys = set(data__discord.keys())
                if "channel_id" in data__discord_keys:
                    data__discord_keys.remove("channel_id")
                    data__discord__channelid = data__discord["channel_id"]
                    if not isinstance(data__discord__channelid, (str)):
                        raise JsonSchemaValueException("" + (name_prefix or "data") + ".discord.channel_id must be string", value=data__discord__channelid, name="" + (name_prefix or "data") + ".discord.channel_id", definition={'type': 'string', 'pattern': '^[0-9]{1,20}$'}, rule='type')
                    if isinstance(data__discord__channelid, str):
                        if not REGEX_PATTERNS['^[0-9]{1,20}$'].search(data__discord__channelid):
                            raise JsonSchemaValueException("" + (name_prefix or "data") + ".discord.channel_id must match pattern ^[0-9]{1,20}$", value=data__discord__channelid, name="" + (name_prefix or "data") + ".discord.channel_id", definition={'type': 'string', 'pattern': '^[0-9]{1,20}$'}, rule='pattern')
                if "operators" in data__discord_keys:
                    data__discord_keys.remove("operators")
                    data__discord__operators = data__discord["operators"]
                    if not isinstance(data__discord__operators, (list, tuple)):
                        raise JsonSchemaValueException("" + (name_prefix or "data") + ".discord.operators must be array", value=data__discord__operators, name="" + (name_prefix or "data") + ".discord.operators", definition={'type': 'array', 'items': {'type': 'string', 'pattern': '^[0-9]{1,20}$'}}, rule='type')
                    data__discord__operators_is_list = isinstance(data__discord__operators, (list, tuple))
                    if data__discord__operators_is_list:
                        data__discord__operators_len = len(data__discord__operators)
                        for data__discord__operators_x, data__discord__operators_item in enumerate(data__discord__operators):
                            if not isinstance(data__discord__operators_item, (str)):
                                raise JsonSchemaValueException("" + (name_prefix or "data") + ".discord.operators[{data__discord__operators_x}]".format(**locals()) + " must be string", value=data__discord__operators_item, name="" + (name_prefix or "data") + ".discord.operators[{data__discord__operators_x}]".format(**locals()) + "", definition={'type': 'string', 'pattern': '^[0-9]{1,20}$'}, rule='type')
                            if isinstance(data__discord__operators_item, str):
                                if not REGEX_PATTERNS['^[0-9]{1,20}$'].search(data__discord__operators_item):
                                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".discord.operators[{data__discord__operators_x}]".format(**locals()) + " must match pattern ^[0-9]{1,20}$", value=data__discord__operators_item, name="" + (name_prefix or "data") + ".discord.operators[{data__discord__operators_x}]".format(**locals()) + "", definition={'type': 'string', 'pattern': '^[0-9]{1,20}$'}, rule='pattern')
                if data__discord_keys:
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".discord must not contain "+str(data__discord_keys)+" properties", value=data__discord, name="" + (name_prefix or "data") + ".discord", definition={'type': 'object', 'additionalProperties': False, 'required': ['channel_id'], 'properties': {'channel_id': {'type': 'string', 'pattern': '^[0-9]{1,20}$'}, 'operators': {'type': 'array', 'items': {'type': 'string', 'pattern': '^[0-9]{1,20}$'}}}}, rule='additionalProperties')
        if data_keys:
            raise JsonSchemaValueException("" + (name_prefix or "data") + " must not contain "+str(data_keys)+" properties", value=data, name="" + (name_prefix or "data") + "", definition={'description': 'Orchestrator chat connector. Optional: absent means tmux (back-compat).', 'type': 'object', 'additionalProperties': False, 'required': ['kind'], 'properties': {'kind': {'enum': ['tmux', 'discord', 'matrix']}, 'matrix': {'type': 'object', 'additionalProperties': False, 'required': ['homeserver_url', 'user_id', 'room_id'], 'properties': {'homeserver_url': {'type': 'string', 'pattern': '^https?://'}, 'user_id': {'type': 'string', 'pattern': '^@[^:]+:.+$'}, 'room_id': {'description': 'A room id (room version 12 ids have no server part) or an alias.', 'type': 'string', 'pattern': '^(![^:]+(:.+)?|#[^:]+:.+)$'}, 'operators': {'type': 'array', 'items': {'type': 'string', 'pattern': '^@[^:]+:.+$'}}}}, 'discord': {'type': 'object', 'additionalProperties': False, 'required': ['channel_id'], 'properties': {'channel_id': {'type': 'string', 'pattern': '^[0-9]{1,20}$'}, 'operators': {'type': 'array', 'items': {'type': 'string', 'pattern': '^[0-9]{1,20}$'}}}}}, 'allOf': [{'if': {'properties': {'kind': {'const': 'matrix'}}}, 'then': {'required': ['matrix']}}, {'if': {'properties': {'kind': {'const': 'discord'}}}, 'then': {'required': ['discord']}}]}, rule='additionalProperties')
    return data

def validate___definitions_agent(data, custom_formats={}, name_prefix=None):
    if not isinstance(data, (dict)):
        raise JsonSchemaValueException("" + (name_prefix or "data") + " must be object", value=data, name="" + (name_prefix or "data") + "", definition={'type': 'object', 'additionalProperties': False, 'required': ['name', 'runtime'], 'properties': {'name': {'description': "A safe systemd unit instance name: letters, digits, '-', '_' and '.', starting with a letter or digit, at most 64 characters, no '..'.", 'type': 'string', 'pattern': '^(?!.*\\.\\.)[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'}, 'runtime': {'description': 'The coding agent the unit runs (claude, codex, opencode, pi, ...).', 'type': 'string', 'pattern': '^[a-z][a-z0-9_-]{0,31}$'}, 'class': {'description': "The agent's role; exactly one `orchestrator` per fleet (R5) but in the minimal preset.", 'type': 'string', 'pattern': '^[a-z][a-z0-9_-]{0,31}$', 'default': 'worker'}}}, rule='type')
    data_is_dict = isinstance(data, dict)
    if data_is_dict:
        data__missing_keys = set(['name', 'runtime']) - data.keys()
        if data__missing_keys:
            raise JsonSchemaValueException("" + (name_prefix or "data") + " must contain " + (str(sorted(data__missing_keys)) + " properties"), value=data, name="" + (name_prefix or "data") + "", definition={'type': 'object', 'additionalProperties': False, 'required': ['name', 'runtime'], 'properties': {'name': {'description': "A safe systemd unit instance name: letters, digits, '-', '_' and '.', starting with a letter or digit, at most 64 characters, no '..'.", 'type': 'string', 'pattern': '^(?!.*\\.\\.)[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'}, 'runtime': {'description': 'The coding agent the unit runs (claude, codex, opencode, pi, ...).', 'type': 'string', 'pattern': '^[a-z][a-z0-9_-]{0,31}$'}, 'class': {'description': "The agent's role; exactly one `orchestrator` per fleet (R5) but in the minimal preset.", 'type': 'string', 'pattern': '^[a-z][a-z0-9_-]{0,31}$', 'default': 'worker'}}}, rule='required')
        data_keys = set(data.keys())
        if "name" in data_keys:
            data_keys.remove("name")
            data__name = data["name"]
            validate___definitions_agentname(data__name, custom_formats, (name_prefix or "data") + ".name")
        if "runtime" in data_keys:
            data_keys.remove("runtime")
            data__runtime = data["runtime"]
            if not isinstance(data__runtime, (str)):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".runtime must be string", value=data__runtime, name="" + (name_prefix or "data") + ".runtime", definition={'description': 'The coding agent the unit runs (claude, codex, opencode, pi, ...).', 'type': 'string', 'pattern': '^[a-z][a-z0-9_-]{0,31}$'}, rule='type')
            if isinstance(data__runtime, str):
                if not REGEX_PATTERNS['^[a-z][a-z0-9_-]{0,31}$'].search(data__runtime):
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".runtime must match pattern ^[a-z][a-z0-9_-]{0,31}$", value=data__runtime, name="" + (name_prefix or "data") + ".runtime", definition={'description': 'The coding agent the unit runs (claude, codex, opencode, pi, ...).', 'type': 'string', 'pattern': '^[a-z][a-z0-9_-]{0,31}$'}, rule='pattern')
        if "class" in data_keys:
            data_keys.remove("class")
            data__class = data["class"]
            if not isinstance(data__class, (str)):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".class must be string", value=data__class, name="" + (name_prefix or "data") + ".class", definition={'description': "The agent's role; exactly one `orchestrator` per fleet (R5) but in the minimal preset.", 'type': 'string', 'pattern': '^[a-z][a-z0-9_-]{0,31}$', 'default': 'worker'}, rule='type')
            if isinstance(data__class, str):
                if not REGEX_PATTERNS['^[a-z][a-z0-9_-]{0,31}$'].search(data__class):
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".class must match pattern ^[a-z][a-z0-9_-]{0,31}$", value=data__class, name="" + (name_prefix or "data") + ".class", definition={'description': "The agent's role; exactly one `orchestrator` per fleet (R5) but in the minimal preset.", 'type': 'string', 'pattern': '^[a-z][a-z0-9_-]{0,31}$', 'default': 'worker'}, rule='pattern')
        else: data["class"] = 'worker'
        if data_keys:
            raise JsonSchemaValueException("" + (name_prefix or "data") + " must not contain "+str(data_keys)+" properties", value=data, name="" + (name_prefix or "data") + "", definition={'type': 'object', 'additionalProperties': False, 'required': ['name', 'runtime'], 'properties': {'name': {'description': "A safe systemd unit instance name: letters, digits, '-', '_' and '.', starting with a letter or digit, at most 64 characters, no '..'.", 'type': 'string', 'pattern': '^(?!.*\\.\\.)[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'}, 'runtime': {'description': 'The coding agent the unit runs (claude, codex, opencode, pi, ...).', 'type': 'string', 'pattern': '^[a-z][a-z0-9_-]{0,31}$'}, 'class': {'description': "The agent's role; exactly one `orchestrator` per fleet (R5) but in the minimal preset.", 'type': 'string', 'pattern': '^[a-z][a-z0-9_-]{0,31}$', 'default': 'worker'}}}, rule='additionalProperties')
    return data

def validate___definitions_agentname(data, custom_formats={}, name_prefix=None):
    if not isinstance(data, (str)):
        raise JsonSchemaValueException("" + (name_prefix or "data") + " must be string", value=data, name="" + (name_prefix or "data") + "", definition={'description': "A safe systemd unit instance name: letters, digits, '-', '_' and '.', starting with a letter or digit, at most 64 characters, no '..'.", 'type': 'string', 'pattern': '^(?!.*\\.\\.)[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'}, rule='type')
    if isinstance(data, str):
        if not REGEX_PATTERNS['^(?!.*\\.\\.)[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'].search(data):
            raise JsonSchemaValueException("" + (name_prefix or "data") + " must match pattern ^(?!.*\\.\\.)[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", value=data, name="" + (name_prefix or "data") + "", definition={'description': "A safe systemd unit instance name: letters, digits, '-', '_' and '.', starting with a letter or digit, at most 64 characters, no '..'.", 'type': 'string', 'pattern': '^(?!.*\\.\\.)[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'}, rule='pattern')
    return data