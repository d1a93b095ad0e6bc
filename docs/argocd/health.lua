-- Argo CD health check for bluegreen.dev/BlueGreenApp (resource.customizations.health.bluegreen.dev_BlueGreenApp).
--
-- The operator reports everything in status: phase, observedGeneration, message, conditions.
--   Healthy      phase Healthy, and the operator has seen the current spec (observedGeneration
--                equals metadata.generation): the active colour serves the stable revision
--   Progressing  no status yet; observedGeneration behind metadata.generation (a new spec the
--                operator has not acted on yet, whatever the phase says); phase Pending,
--                Deploying, Analyzing, Observing or RollingBack (a release is in flight)
--   Suspended    phase Paused: the release waits for a person (kubectl annotate bga NAME
--                bluegreen.dev/request=promote, or =abort)
--   Degraded     phase Degraded: the last release failed and traffic is on the stable revision
--   Unknown      a phase this check does not know (a newer operator)
-- The message is status.message, else the Progressing condition's message, else the message
-- of the condition named after the phase (Degraded, Paused), else a short description.
--
-- Written for Argo CD's Lua: gopher-lua (Lua 5.1; every number is a float) with only the base,
-- table and package libraries open, as Argo CD runs a check from argocd-cm. So no string or
-- math library here. Tested under gopher-lua set up that way and under lua5.4 with the same
-- libraries (tests/component/test_argocd_health.py).

local hs = {}

local DIGITS = { "0", "1", "2", "3", "4", "5", "6", "7", "8", "9" }

-- A generation as "12": tostring() writes 12.0 in Lua 5.4 and string.format is not there.
local function number_text(n)
  if n < 0 then
    return "-" .. number_text(-n)
  end
  local text = ""
  repeat
    local digit = n % 10
    text = DIGITS[digit + 1] .. text
    n = (n - digit) / 10
  until n < 1
  return text
end

local function condition_message(status, wanted)
  if type(status.conditions) ~= "table" then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if type(c) == "table" and c.type == wanted and type(c.message) == "string" and c.message ~= "" then
      return c.message
    end
  end
  return nil
end

local function message_of(status, own_condition, fallback)
  if type(status.message) == "string" and status.message ~= "" then
    return status.message
  end
  return condition_message(status, "Progressing")
    or (own_condition and condition_message(status, own_condition))
    or fallback
end

local status = obj.status
if type(status) ~= "table" or status.phase == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the bluegreen operator to report status"
  return hs
end

local generation = obj.metadata and obj.metadata.generation
local observed = status.observedGeneration
if type(generation) == "number" and (type(observed) ~= "number" or observed < generation) then
  hs.status = "Progressing"
  if type(observed) == "number" then
    hs.message = "Waiting for the bluegreen operator to act on generation " .. number_text(generation)
      .. " (it has seen " .. number_text(observed) .. ")"
  else
    hs.message = "Waiting for the bluegreen operator to act on generation " .. number_text(generation)
  end
  return hs
end

local phase = status.phase
local in_flight = {
  Pending = "The first colour is being deployed",
  Deploying = "The candidate colour is being deployed",
  Analyzing = "The candidate is being analysed before the switch",
  Observing = "Traffic is on the candidate; the old colour is kept warm",
  RollingBack = "Traffic is going back to the stable colour",
}

if phase == "Healthy" then
  hs.status = "Healthy"
  local serving = "The active colour serves the stable revision"
  if type(status.activeColor) == "string" and type(status.stableRevision) == "string" then
    serving = status.activeColor .. " serves revision " .. status.stableRevision
  end
  hs.message = message_of(status, "Available", serving)
elseif in_flight[phase] ~= nil then
  hs.status = "Progressing"
  hs.message = message_of(status, nil, phase .. ": " .. in_flight[phase])
elseif phase == "Paused" then
  hs.status = "Suspended"
  hs.message = message_of(status, "Paused", "Paused: waiting for promote or abort")
elseif phase == "Degraded" then
  hs.status = "Degraded"
  hs.message = message_of(status, "Degraded", "Degraded: the last release failed; traffic is on the stable revision")
else
  hs.status = "Unknown"
  hs.message = "Unknown phase " .. tostring(phase)
end
return hs
