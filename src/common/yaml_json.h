// YAML documents (config files, Kubernetes manifests) as JSON values.
#pragma once

#include <yaml-cpp/yaml.h>

#include <nlohmann/json.hpp>

namespace pbm {

// Maps, sequences and scalars; an unquoted true/false becomes a boolean and an unquoted integer
// a number; everything else (quoted or not) a string; null for an empty node.
nlohmann::json YamlToJson(const YAML::Node& n);

}  // namespace pbm
