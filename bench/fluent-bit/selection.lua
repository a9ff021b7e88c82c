-- The Lua peer in the Fluent Bit bench: the filter a Fluent Bit user would write to do tripline's
-- selection. It reads eventName and eventTime, tags the records either detection wants (JobCreated,
-- any case, or one of the security-group calls) and returns every other record unchanged.
--
-- The bench passes the security-group calls in TRIPLINE_FIREWALL_COMMANDS (comma-separated, from
-- tripline's FIREWALL_COMMANDS), so the list has one source.

local firewall_commands = {}
local list = os.getenv("TRIPLINE_FIREWALL_COMMANDS")
    or error("selection.lua: TRIPLINE_FIREWALL_COMMANDS is not set")
for name in string.gmatch(list, "[^,]+") do
    firewall_commands[name] = true
end

function select_record(tag, timestamp, record)
    local name = record["eventName"]
    local time = record["eventTime"]
    if type(name) == "string" and (firewall_commands[name] or string.lower(name) == "jobcreated") then
        record["tripline"] = { selected = name, eventTime = time }
        -- 2: record modified, timestamp kept.
        return 2, timestamp, record
    end
    -- 0: record unchanged (Fluent Bit then skips re-encoding it).
    return 0, timestamp, record
end
