#include "common/yaml_json.h"

#include <string>

namespace pbm {

using Json = nlohmann::json;

Json YamlToJson(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map: {
      Json j = Json::object();
      for (const auto& kv : n) j[kv.first.as<std::string>()] = YamlToJson(kv.second);
      return j;
    }
    case YAML::NodeType::Sequence: {
      Json j = Json::array();
      for (const auto& x : n) j.push_back(YamlToJson(x));
      return j;
    }
    case YAML::NodeType::Scalar: {
      std::string s = n.Scalar();
      if (n.Tag() == "!") return s;  // quoted
      if (s == "true") return true;
      if (s == "false") return false;
      try {
        size_t pos;
        long long v = std::stoll(s, &pos);
        if (pos == s.size()) return v;
      } catch (...) {
      }
      return s;
    }
    default:
      return nullptr;
  }
}

}  // namespace pbm
